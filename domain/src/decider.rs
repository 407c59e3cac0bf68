//! Every aggregate here is a decider: a pure `decide(&state, command)` that
//! returns events or refuses, and a pure `evolve(&mut state, &event)`. This
//! macro is the one place that turns such a pair into a cqrs-es aggregate.

/// `decider_aggregate!(State, "type", Command, Event, Error, decide, evolve)`
#[macro_export]
macro_rules! decider_aggregate {
    ($state:ty, $type_name:literal, $command:ty, $event:ty, $error:ty, $decide:path, $evolve:path) => {
        impl ::cqrs_es::Aggregate for $state {
            const TYPE: &'static str = $type_name;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: $command,
                _: &(),
                sink: &::cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), $error> {
                for event in $decide(self, command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: $event) {
                $evolve(self, &event);
            }
        }
    };
}
