"""The first steps of a REST client, through the Python client generated
from openapi/openapi.json by openapi-python-client: sign in, create a
category and a service, register a master, read availability, book, and
read the appointment's history. Prints one JSON line; exits non-zero on any
unexpected answer. Run by tests/api/clients.rs against the real server."""

import datetime
import json
import os
import sys
import uuid

from annals_api_client import AuthenticatedClient, Client
from annals_api_client.api.appointments import (
    appointment_history,
    book,
    create_category,
    create_service,
    get_availability,
    register_master,
)
from annals_api_client.api.identity import login
from annals_api_client.models import (
    BookRequest,
    CategoryRequest,
    LoginRequest,
    MasterRequest,
    RangeBody,
    ServiceRequest,
    TimeZoneName,
)


def expect(response, status):
    if response.status_code != status:
        sys.exit(f"expected {status}, got {response.status_code}: {response.content!r}")
    return response.parsed


base = os.environ["ANNALS_URL"]
anonymous = Client(base_url=base)
signed_in = expect(
    login.sync_detailed(
        client=anonymous,
        body=LoginRequest(username=os.environ["ADMIN"], password=os.environ["PASSWORD"]),
    ),
    200,
)
client = AuthenticatedClient(base_url=base, token=signed_in.access_token)

category = expect(create_category.sync_detailed(client=client, body=CategoryRequest(name="Hair")), 201)
service = expect(
    create_service.sync_detailed(
        client=client,
        body=ServiceRequest(
            name="Haircut",
            category_id=uuid.UUID(category.id),
            duration_minutes=45,
            price="25.00",
            currency="EUR",
        ),
    ),
    201,
)
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
master = expect(
    register_master.sync_detailed(
        client=client,
        body=MasterRequest(
            user_id=uuid.UUID(os.environ["MASTER"]),
            time_zone=TimeZoneName.UTC,
            working_hours=[RangeBody(weekday=d, start="09:00", end="18:00") for d in days],
            service_ids=[uuid.UUID(service.id)],
        ),
    ),
    201,
)
day = datetime.date.fromisoformat(os.environ["DAY"])
availability = expect(
    get_availability.sync_detailed(
        client=client,
        service_id=uuid.UUID(service.id),
        date=day,
        tz=TimeZoneName.EUROPE_BERLIN,
        min_position=master.position,
    ),
    200,
)
if not availability.slots:
    sys.exit(f"no free slot on {day}")
slot = availability.slots[0]
booked = expect(
    book.sync_detailed(
        client=client,
        body=BookRequest(service_id=uuid.UUID(service.id), start=slot.start),
    ),
    201,
)
history = expect(appointment_history.sync_detailed(client=client, id=uuid.UUID(booked.id)), 200)
print(
    json.dumps(
        {
            "appointment": booked.id,
            "start": slot.start.isoformat(),
            "history": [entry.event_type for entry in history],
        }
    )
)
