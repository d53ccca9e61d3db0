"""The files under schemas/ are generated from code; drift fails here."""

import json

from bankrun import schemas
from bankrun.events import EVENT_TYPES
from bankrun.topics import CATALOGUE, topic_of


def test_checked_in_schemas_match_the_code():
    assert schemas.drift() == [], "run `bankrun schemas` and commit the result"


def test_a_changed_model_is_detected(tmp_path):
    schemas.write(tmp_path)
    assert schemas.drift(tmp_path) == []
    path = tmp_path / "events" / "deposit.made.json"
    schema = json.loads(path.read_text())
    schema["properties"]["amount"]["exclusiveMinimum"] = -1  # what an edited model would give
    path.write_text(json.dumps(schema))
    (tmp_path / "events" / "stale.json").write_text("{}")
    assert schemas.drift(tmp_path) == ["events/deposit.made.json", "events/stale.json"]


def test_every_event_type_has_exactly_one_topic():
    for cls in EVENT_TYPES.values():
        homes = [t.name for t in CATALOGUE if cls in t.event_types]
        assert len(homes) == 1, (cls.__name__, homes)
        assert topic_of(cls).name == homes[0]


def test_venue_keyed_topics_are_co_partitioned():
    venue_keyed = {t.partitions for t in CATALOGUE if t.key == "venue"}
    assert len(venue_keyed) == 1
