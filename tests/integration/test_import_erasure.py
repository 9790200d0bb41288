"""An imported author can be forgotten, and importing the same file again does not bring
them back: the engine skips every event whose id (derived from the source) is in the log,
and an erased person's events stay in the log with their personal fields gone."""

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.worker.folding import fold_all, thread_projection
from services.worker.imports.engine import Importer
from services.worker.imports.folds import FoldHere
from services.worker.imports.model import SourceThread
from services.worker.notification_projector import notification_projection
from services.worker.verify import verify
from shared.store import EventStore
from tests.import_sources import ListSource, comment, thread
from tests.integration.conftest import Auth
from tests.integration.test_erasure import found_in_database

BOB = "import:disqus:bob"
BOBS_WORDS = ["Bob remembers the flood of 1953", "Bob again, on the second page"]


def the_file() -> list[SourceThread]:
    return [
        thread(
            "a",
            [
                comment("1", minute=1, body="Ann starts"),
                comment("2", "1", minute=2, who="bob", body=BOBS_WORDS[0]),
                comment("3", "2", minute=3, who="cat", body="Cat answers"),
                comment("4", minute=4, who="bob", body=BOBS_WORDS[1]),
            ],
        )
    ]


def import_it(engine: Engine, store: EventStore) -> None:
    Importer(engine, ListSource(the_file()), after_batch=FoldHere(engine, store)).run()


def test_an_erased_imported_author_stays_forgotten_when_the_file_is_imported_again(
    engine: Engine, store: EventStore, client: TestClient, auth: Auth, database_url: str
) -> None:
    import_it(engine, store)
    assert found_in_database(engine, database_url, ["Bob", *BOBS_WORDS]) == [
        "Bob",
        *BOBS_WORDS,
    ]

    erased = client.post(f"/v1/users/{BOB}/erase", headers=auth("root", roles=["admin"]))
    assert erased.status_code == 202, erased.text
    fold_all(engine, store, "post-a", [thread_projection(), notification_projection()])

    import_it(engine, store)  # the same file again
    fold_all(engine, store, "post-a", [thread_projection(), notification_projection()])

    page = client.get("/v1/threads/post-a/comments", params={"replies": 5}).json()
    authors = [c["author"] for c in page["comments"]]
    assert authors[0]["name"] == "Ann"
    reply = page["comments"][0]["replies"][0]
    assert (reply["author"], reply["body_html"]) == (None, None)  # Bob's: a placeholder
    assert reply["replies"][0]["author"]["name"] == "Cat"  # Cat's answer stays
    assert page["comment_count"] == 2  # Ann's and Cat's
    assert found_in_database(engine, database_url, ["Bob", *BOBS_WORDS]) == []
    assert verify(engine).ok
