"""Dialogue pages and API: roles, filters over HTTP, htmx fragments, escaping, query count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from bs4 import BeautifulSoup, Tag
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.accounts.service import create_api_token
from app.assignments import service as assignments
from app.models import Assignment, Dialogue, ImportBatch, Project, Role, User
from tests.dialogues.data import (
    annotate,
    client_turn,
    counselor_turn,
    make_batch,
    make_dialogue,
    make_dialogues,
    make_source,
    seed_codebook,
)
from tests.factories import add_member, login, make_project, make_user

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg onload=alert(1)>",
    "{{ 7*7 }} \u202egnp.exe 王小明 😀",
]


def _soup(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def _one(soup: BeautifulSoup | Tag, selector: str) -> Tag:
    found = soup.select_one(selector)
    assert found is not None, f"no {selector!r} in the page"
    return found


def _row_ids(soup: BeautifulSoup) -> list[int]:
    return [int(str(tr["data-dialogue-id"])) for tr in soup.select("#dialogue-results tbody tr")]


@pytest.fixture
async def lead(db: AsyncSession) -> User:
    return await make_user(db)


@pytest.fixture
async def project(db: AsyncSession, lead: User) -> Project:
    project = await make_project(db, lead=lead)
    await seed_codebook(db, project)
    return project


@pytest.fixture
async def batch(db: AsyncSession, project: Project) -> ImportBatch:
    return await make_batch(db, project, await make_source(db, project), "cn_data_version7.json")


def _url(project: Project, rest: str = "") -> str:
    return f"/projects/{project.slug}/dialogues{rest}"


# --- the list -----------------------------------------------------------------------------------


async def test_list_shows_rows_count_and_filter_choices(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    dialogue = await make_dialogue(
        db,
        project,
        batch,
        external_id="000042",
        language="zh",
        turns=[client_turn("我睡不好"), counselor_turn("嗯")],
        session_labels={"topic": ["Sleep Problems"], "psychotherapy": ["Gestalt Therapy"]},
    )
    await make_batch(db, project, await make_source(db, project, "failed"), "bad.json", "failed")
    await login(client, lead)
    response = await client.get(_url(project))
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    soup = _soup(response)
    assert _one(soup, "header.topbar")
    assert _one(soup, "#dialogue-count")["data-total"] == "1"
    row = _one(soup, f"tr[data-dialogue-id='{dialogue.id}']")
    cells = [td.get_text(strip=True) for td in row.select("td")]
    assert cells == [
        "000042",
        "Chinese",
        "Sleep Problems",
        "Gestalt Therapy",
        "2",
        "cn_data_version7.json",
        "Not assigned(0 of 2 submitted)",
    ]
    assert _one(row, "a")["href"] == f"/projects/{project.slug}/dialogues/{dialogue.id}"
    topics = [o["value"] for o in soup.select("#f-topic option")]
    assert topics[0] == ""
    assert len(topics) == 12  # "any" and the codebook's eleven topics
    assert "Sleep Problems" in topics
    assert len(soup.select("#f-psychotherapy option")) == 18
    batches = [(o["value"], o.get_text()) for o in soup.select("#f-batch option")]
    assert batches == [("", "Any"), (str(batch.id), f"cn_data_version7.json (#{batch.id})")]
    form = _one(soup, "form#dialogue-filters")
    assert form["method"] == "get"
    assert form["hx-target"] == "#dialogue-results"
    assert form["hx-push-url"] == "true"


async def test_labels_are_shown_in_the_interface_language(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, batch: ImportBatch
) -> None:
    reader = await make_user(db, language="zh")
    await add_member(db, project, reader, Role.reviewer)
    await make_dialogue(
        db,
        project,
        batch,
        session_labels={"topic": ["Sleep Problems", "Not In Codebook"]},
    )
    await login(client, reader)
    soup = _soup(await client.get(_url(project)))
    assert _one(soup, "td.col-topic").get_text(strip=True) == "睡眠问题, Not In Codebook"
    options = {o["value"]: o.get_text() for o in soup.select("#f-topic option")}
    assert options["Sleep Problems"] == "睡眠问题"


async def test_htmx_request_gets_only_the_results(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    dialogue = await make_dialogue(db, project, batch, language="en")
    await make_dialogue(db, project, batch, language="zh")
    await login(client, lead)
    response = await client.get(
        _url(project), params={"language": "en", "q": ""}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    soup = _soup(response)
    assert soup.select_one("header") is None
    assert soup.select_one("form") is None
    roots = [el for el in soup.children if isinstance(el, Tag)]
    assert [el.get("id") for el in roots] == ["dialogue-results"]
    assert _row_ids(soup) == [dialogue.id]
    # htmx restoring history it has not cached asks for the whole page
    restore = await client.get(
        _url(project), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert _soup(restore).select_one("header.topbar") is not None


async def test_next_page_links_walk_every_dialogue_once(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    made = sorted(d.id for d in await make_dialogues(db, project, batch, 120))
    await make_dialogues(db, project, batch, 7, language="zh")
    await login(client, lead)
    url: str | None = _url(project, "?language=en")
    seen: list[int] = []
    pages = 0
    while url:
        response = await client.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200
        soup = _soup(response)
        assert _one(soup, "#dialogue-count")["data-total"] == "120"
        seen.extend(_row_ids(soup))
        pages += 1
        link = soup.select_one("a[rel=next]")
        if link is None:
            break
        assert link["hx-get"] == link["href"]
        url = str(link["href"])
        query = parse_qs(urlsplit(url).query)
        assert query["language"] == ["en"]  # the filters travel with the cursor
        assert "OFFSET" not in url.upper()
    assert pages == 3
    assert seen == made
    first = _one(soup, "a[rel=first]")
    assert parse_qs(urlsplit(str(first["href"])).query) == {"language": ["en"]}


async def test_filters_combine_over_http(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    other_batch = await make_batch(db, project, await make_source(db, project, "b"), "b.json")
    wanted = await make_dialogue(
        db,
        project,
        batch,
        language="zh",
        turns=[client_turn("我最近总是失眠")],
        session_labels={"topic": ["Sleep Problems"], "psychotherapy": ["Family Therapy"]},
    )
    same_but_other_batch = await make_dialogue(
        db,
        project,
        other_batch,
        language="zh",
        turns=[client_turn("我最近总是失眠")],
        session_labels={"topic": ["Sleep Problems"], "psychotherapy": ["Family Therapy"]},
    )
    await make_dialogue(db, project, batch, language="en", turns=[client_turn("I can't sleep")])
    await login(client, lead)
    every = {
        "q": "失眠",
        "language": "zh",
        "topic": "Sleep Problems",
        "psychotherapy": "Family Therapy",
        "batch": str(batch.id),
    }
    soup = _soup(await client.get(_url(project), params=every))
    assert _row_ids(soup) == [wanted.id]
    # the form keeps what was asked
    assert _one(soup, "#f-q")["value"] == "失眠"
    assert _one(soup, "#f-language option[selected]")["value"] == "zh"
    assert _one(soup, "#f-topic option[selected]")["value"] == "Sleep Problems"
    assert _one(soup, "#f-batch option[selected]")["value"] == str(batch.id)
    without_batch = {**every, "batch": ""}
    soup = _soup(await client.get(_url(project), params=without_batch))
    assert _row_ids(soup) == [wanted.id, same_but_other_batch.id]
    english = _soup(await client.get(_url(project), params={"q": "SLEEP", "language": "en"}))
    assert len(_row_ids(english)) == 1


async def test_status_filter_follows_the_assignments(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    """Overlap 2: nobody / one open / two submitted / one submitted and one skipped / only a
    skip. Statuses come from the assignments as the services leave them."""
    people = [await make_user(db) for _ in range(2)]
    d = [(await make_dialogue(db, project, batch, external_id=f"s{i}")).id for i in range(5)]
    given = {1: [0], 2: [0, 1], 3: [0, 1], 4: [0]}
    for dialogue_id_index, who in given.items():
        for w in who:
            await assignments.assign(db, lead, project, [d[dialogue_id_index]], people[w])
    rows = {(a.dialogue_id, a.user_id): a for a in await db.scalars(select(Assignment))}
    for key in ((d[2], people[0].id), (d[2], people[1].id), (d[3], people[0].id)):
        rows[key].status = "submitted"
    await assignments.skip(db, people[1], rows[d[3], people[1].id], "not my field")
    await assignments.skip(db, people[0], rows[d[4], people[0].id], "too long")
    await db.flush()

    await login(client, lead)
    expected = {
        "unassigned": [d[0], d[4]],
        "in_progress": [d[1], d[3]],
        "complete": [d[2]],
        "skipped": [d[3], d[4]],
        "": d,
    }
    for status, ids in expected.items():
        soup = _soup(await client.get(_url(project), params={"status": status}))
        assert _row_ids(soup) == ids, status
    soup = _soup(await client.get(_url(project)))
    cells = {int(str(tr["data-dialogue-id"])): _one(tr, ".col-status") for tr in
             soup.select("#dialogue-results tbody tr")}  # fmt: skip
    assert [cells[i]["data-status"] for i in d] == [
        "unassigned",
        "in_progress",
        "complete",
        "in_progress",
        "unassigned",
    ]
    assert " ".join(cells[d[3]].get_text().split()) == "In progress (1 of 2 submitted; skipped: 1)"
    assert _one(soup, "#f-status option[value=complete]").get_text() == "Complete"

    _, raw = await create_api_token(db, lead, "t")
    api = f"/api/v1/projects/{project.slug}/dialogues"
    answer = await client.get(api, params={"status": "skipped"},
                              headers={"Authorization": f"Bearer {raw}"})  # fmt: skip
    items = answer.json()["items"]
    assert [(i["id"], i["status"], i["submitted"], i["skipped"]) for i in items] == [
        (d[3], "in_progress", 1, 1),
        (d[4], "unassigned", 0, 1),
    ]


async def test_search_without_matches_shows_the_empty_state(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    await make_dialogue(db, project, batch, turns=[client_turn("我最近总是失眠")])
    await login(client, lead)
    response = await client.get(_url(project), params={"q": "焦虑"})
    assert response.status_code == 200
    soup = _soup(response)
    assert _row_ids(soup) == []
    assert soup.select_one("#dialogue-results table") is None
    assert "No dialogues match" in _one(soup, "#dialogues-empty").get_text()
    assert _one(soup, "#dialogue-count")["data-total"] == "0"
    assert soup.select_one("a[rel=next]") is None


async def test_a_foreign_batch_gives_no_results_not_an_error(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    await make_dialogue(db, project, batch)
    other = await make_project(db, lead=lead)
    foreign = await make_batch(db, other, await make_source(db, other))
    await make_dialogue(db, other, foreign)
    await login(client, lead)
    response = await client.get(_url(project), params={"batch": str(foreign.id)})
    assert response.status_code == 200
    assert _one(_soup(response), "#dialogue-count")["data-total"] == "0"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"language": "fr"}, "language", "Unknown language"),
        ({"batch": "abc"}, "batch", "must be a number"),
        ({"batch": "99999999999999999999"}, "batch", "must be a number"),
        ({"cursor": "not-a-cursor!"}, None, "page link is invalid"),
        ({"q": "x" * 201}, "q", "too long"),
        ({"status": "done"}, "status", "Unknown status"),
    ],
)
async def test_bad_query_parameters_are_422_with_a_message(
    client: httpx.AsyncClient,
    project: Project,
    lead: User,
    params: dict[str, str],
    field: str | None,
    message: str,
) -> None:
    await login(client, lead)
    response = await client.get(_url(project), params=params)
    assert response.status_code == 422
    soup = _soup(response)
    assert message in _one(soup, "#dialogue-filter-errors").get_text()
    assert soup.select_one("#dialogue-results table") is None
    if field:
        assert _one(soup, f"#f-{field}")["aria-invalid"] == "true"
    fragment = await client.get(_url(project), params=params, headers={"HX-Request": "true"})
    assert fragment.status_code == 422
    assert message in _one(_soup(fragment), "#dialogue-results [role=alert]").get_text()


# --- one dialogue -------------------------------------------------------------------------------


async def _rich_dialogue(db: AsyncSession, project: Project, batch: ImportBatch) -> Dialogue:
    file_source = await make_source(db, project, "cn_data_version7.json")
    model_source = await make_source(db, project, "model-x")
    dialogue = await make_dialogue(
        db,
        project,
        batch,
        external_id="000007",
        language="en",
        turns=[
            counselor_turn("Hello, what brings you here?", participant="Therapist"),
            client_turn(
                "I cannot sleep.",
                participant="Client",
                flags=("all_emotions",),
                extras={"reference_labels": ["[sighs]"]},
            ),
            client_turn("And I worry.", participant="Anna"),
        ],
        meta={
            "theme": "Insomnia before exams",
            "stage": "1st Session",
            "background": "A student.",
            "is_same_qa": 0,
            "reasoning": "Session rationale",
        },
        session_labels={"topic": ["Sleep Problems"]},
    )
    await annotate(db, file_source, dialogue, 1, "emotion", labels=["Anxiety", "Fear"])
    await annotate(db, file_source, dialogue, 1, "observation", text="tired and tense")
    await annotate(db, model_source, dialogue, 1, "emotion", labels=["Sadness"])
    await annotate(db, file_source, dialogue, 0, "strategy", labels=["Question"])
    await annotate(db, file_source, dialogue, -1, "summary", text="Explored the sleep problem")
    await annotate(db, file_source, dialogue, -1, "topic", labels=["Sleep Problems"])
    return dialogue


async def test_view_shows_context_turns_and_sources(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    dialogue = await _rich_dialogue(db, project, batch)
    await login(client, lead)
    response = await client.get(_url(project, f"/{dialogue.id}"))
    assert response.status_code == 200
    soup = _soup(response)

    context = _one(soup, "#session-context")
    assert _one(context, ".context-theme dd").get_text() == "Insomnia before exams"
    assert _one(context, ".context-stage dd").get_text() == "1st Session"
    assert _one(context, ".context-background dd").get_text() == "A student."
    more = _one(context, "details.more-metadata")
    assert [dt.get_text() for dt in more.select("dt")] == ["is_same_qa", "reasoning"]

    turns = soup.select("section.turn")
    assert [t["aria-label"] for t in turns] == ["Turn 1", "Turn 2", "Turn 3"]
    assert all(t["role"] == "region" for t in turns)
    assert [t["class"] for t in turns] == [
        ["turn", "turn--counselor"],
        ["turn", "turn--client"],
        ["turn", "turn--client"],
    ]
    assert [_one(t, ".speaker-role").get_text() for t in turns] == [
        "Counselor",
        "Client",
        "Client",
    ]
    assert _one(turns[0], ".participant").get_text() == "Therapist"
    assert _one(turns[2], ".participant").get_text() == "Anna"
    assert _one(turns[1], ".turn-content").get_text() == "I cannot sleep."
    flag = _one(turns[1], ".flag-badge")
    assert flag["data-flag"] == "all_emotions"
    assert flag.get_text() == "all emotion labels (import artefact)"
    assert turns[0].select(".flag-badge") == []
    assert _one(turns[1], ".stage-direction").get_text() == "[sighs]"

    sources = turns[1].select(".source")
    assert [s["data-source"] for s in sources] == ["cn_data_version7.json", "model-x"]
    file_values = sources[0].select(".source-value")
    assert [v["data-dimension"] for v in file_values] == ["emotion", "observation"]
    assert [c.get_text() for c in file_values[0].select(".label-chip")] == ["Anxiety", "Fear"]
    assert _one(file_values[1], ".source-text").get_text() == "tired and tense"
    assert [c.get_text() for c in sources[1].select(".label-chip")] == ["Sadness"]
    assert turns[2].select(".source") == []

    session = _one(soup, "#session-annotations")
    assert [s["data-source"] for s in session.select(".source")] == ["cn_data_version7.json"]
    assert [v["data-dimension"] for v in session.select(".source-value")] == ["topic", "summary"]
    assert "Explored the sleep problem" in session.get_text()


async def test_view_in_chinese_names_labels_from_the_codebook(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, batch: ImportBatch
) -> None:
    dialogue = await _rich_dialogue(db, project, batch)
    reader = await make_user(db, language="zh")
    await add_member(db, project, reader, Role.exporter)
    await login(client, reader)
    soup = _soup(await client.get(_url(project, f"/{dialogue.id}")))
    chips = [c.get_text() for c in soup.select("section.turn .label-chip")]
    assert chips == ["提问", "焦虑", "恐惧", "悲伤"]
    assert _one(soup, "section.turn .label-chip")["title"] == "Question"
    dims = [dt.get_text() for dt in soup.select("#turn-2 .source-values dt")]
    assert dims == ["情绪", "观察", "情绪"]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_text_is_escaped(
    client: httpx.AsyncClient,
    db: AsyncSession,
    project: Project,
    lead: User,
    hostile: str,
) -> None:
    source = await make_source(db, project, hostile)
    batch = await make_batch(db, project, source, hostile)
    dialogue = await make_dialogue(
        db,
        project,
        batch,
        external_id=hostile,
        turns=[
            client_turn(
                hostile, participant=hostile, extras={"reference_labels": hostile, hostile: 1}
            ),
            counselor_turn("ok"),
        ],
        meta={"theme": hostile, hostile: hostile},
        session_labels={"topic": [hostile]},
    )
    await annotate(db, source, dialogue, 0, "emotion", labels=[hostile])
    await annotate(db, source, dialogue, 0, hostile, text=hostile)
    await annotate(db, source, dialogue, -1, "summary", text=hostile)
    await login(client, lead)
    for path in (_url(project), _url(project, f"/{dialogue.id}")):
        response = await client.get(path)
        assert response.status_code == 200, path
        soup = _soup(response)
        scripts = [s.get("src") for s in soup.find_all("script")]
        assert all(src and str(src).startswith("/static/") for src in scripts), path
        assert not soup.select("img, svg, [onerror], [onload]"), path
        assert hostile in soup.get_text(), path
    assert soup.get_text().count(hostile) >= 8


async def test_unknown_or_foreign_dialogue_is_404(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    mine = await make_dialogue(db, project, batch)
    # the caller leads the other project too: the dialogue is still not reachable through this one
    other = await make_project(db, lead=lead)
    theirs = await make_dialogue(
        db, other, await make_batch(db, other, await make_source(db, other))
    )
    await login(client, lead)
    assert (await client.get(_url(project, f"/{mine.id}"))).status_code == 200
    assert (await client.get(_url(other, f"/{theirs.id}"))).status_code == 200
    assert (await client.get(_url(project, f"/{theirs.id}"))).status_code == 404
    assert (await client.get(_url(project, f"/{theirs.id + 10_000}"))).status_code == 404
    api = await client.get(f"/api/v1/projects/{project.slug}/dialogues/{theirs.id}")
    assert api.status_code == 404
    assert api.json() == {"detail": "No such dialogue in this project."}
    for bad in ("abc", "0", str(2**63)):
        assert (await client.get(_url(project, f"/{bad}"))).status_code == 422, bad


# --- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.annotator, 403), (Role.reviewer, 200), (Role.exporter, 200), (Role.lead, 200)],
)
async def test_who_may_browse(
    client: httpx.AsyncClient,
    db: AsyncSession,
    project: Project,
    batch: ImportBatch,
    role: Role,
    status: int,
) -> None:
    dialogue = await make_dialogue(db, project, batch)
    member = await make_user(db)
    await add_member(db, project, member, role)
    await login(client, member)
    for path in (
        _url(project),
        _url(project, f"/{dialogue.id}"),
        f"/api/v1/projects/{project.slug}/dialogues",
        f"/api/v1/projects/{project.slug}/dialogues/{dialogue.id}",
    ):
        assert (await client.get(path)).status_code == status, path


async def test_non_member_gets_404(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, batch: ImportBatch
) -> None:
    dialogue = await make_dialogue(db, project, batch)
    await login(client, await make_user(db, admin=True))
    assert (await client.get(_url(project))).status_code == 404
    assert (await client.get(_url(project, f"/{dialogue.id}"))).status_code == 404


# --- API ----------------------------------------------------------------------------------------


async def test_api_list_pages_and_filters(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    made = sorted(d.id for d in await make_dialogues(db, project, batch, 55, language="zh"))
    labelled = await make_dialogue(
        db,
        project,
        batch,
        external_id="000432",
        turns=[client_turn("hi")],
        session_labels={"topic": ["Job Crisis"], "psychotherapy": ["Reality Therapy"]},
    )
    _, raw = await create_api_token(db, lead, "t")
    auth = {"Authorization": f"Bearer {raw}"}
    url = f"/api/v1/projects/{project.slug}/dialogues"

    first = await client.get(url, params={"language": "zh"}, headers=auth)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"items", "next_cursor", "total"}
    assert body["total"] == 55
    assert len(body["items"]) == 50
    second = await client.get(
        url, params={"language": "zh", "cursor": body["next_cursor"]}, headers=auth
    )
    rest = second.json()
    assert rest["next_cursor"] is None
    assert [i["id"] for i in body["items"] + rest["items"]] == made

    one = (await client.get(url, params={"topic": "Job Crisis"}, headers=auth)).json()
    assert one == {
        "items": [
            {
                "id": labelled.id,
                "external_id": "000432",
                "language": "en",
                "topic": ["Job Crisis"],
                "psychotherapy": ["Reality Therapy"],
                "turn_count": 1,
                "import_batch": {"id": batch.id, "file_name": "cn_data_version7.json"},
                "status": "unassigned",
                "submitted": 0,
                "skipped": 0,
            }
        ],
        "next_cursor": None,
        "total": 1,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"language": "xx"}, "language"),
        ({"batch": "1.5"}, "batch"),
        ({"cursor": "zz"}, "cursor"),
        ({"status": "finished"}, "status"),
    ],
)
async def test_api_list_refuses_bad_parameters(
    client: httpx.AsyncClient, project: Project, lead: User, params: dict[str, str], field: str
) -> None:
    await login(client, lead)
    response = await client.get(f"/api/v1/projects/{project.slug}/dialogues", params=params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [d["loc"] for d in detail] == [["query", field]]


async def test_api_detail_shape(
    client: httpx.AsyncClient, db: AsyncSession, project: Project, lead: User, batch: ImportBatch
) -> None:
    dialogue = await _rich_dialogue(db, project, batch)
    await login(client, lead)
    response = await client.get(f"/api/v1/projects/{project.slug}/dialogues/{dialogue.id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"dialogue", "turns", "source_annotations"}
    d = body["dialogue"]
    assert d["id"] == dialogue.id
    assert d["external_id"] == "000007"
    assert list(d["metadata"]) == ["theme", "stage", "background", "is_same_qa", "reasoning"]
    assert d["import_batch"] == {"id": batch.id, "file_name": "cn_data_version7.json"}
    assert d["session_labels"] == {"topic": ["Sleep Problems"]}
    assert [t["position"] for t in body["turns"]] == [0, 1, 2]
    assert body["turns"][1] == {
        "position": 1,
        "speaker": "client",
        "participant": "Client",
        "content": "I cannot sleep.",
        "original_id": "u-1",
        "flags": ["all_emotions"],
        "extras": {"reference_labels": ["[sighs]"]},
    }
    values = {
        (a["source"], a["position"], a["dimension"]): (a["labels"], a["text"])
        for a in body["source_annotations"]
    }
    assert values == {
        ("cn_data_version7.json", -1, "topic"): (["Sleep Problems"], None),
        ("cn_data_version7.json", -1, "summary"): (None, "Explored the sleep problem"),
        ("cn_data_version7.json", 0, "strategy"): (["Question"], None),
        ("cn_data_version7.json", 1, "emotion"): (["Anxiety", "Fear"], None),
        ("cn_data_version7.json", 1, "observation"): (None, "tired and tense"),
        ("model-x", 1, "emotion"): (["Sadness"], None),
    }


async def test_openapi_documents_the_dialogue_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    listing = spec["paths"]["/api/v1/projects/{slug}/dialogues"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "slug",
        "q",
        "language",
        "topic",
        "psychotherapy",
        "batch",
        "status",
        "cursor",
    }
    assert "/api/v1/projects/{slug}/dialogues/{dialogue_id}" in spec["paths"]


# --- a long dialogue ----------------------------------------------------------------------------


@contextmanager
def _count_statements(connection: AsyncConnection) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = connection.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _long_dialogue(
    db: AsyncSession, project: Project, batch: ImportBatch, turns: int
) -> Dialogue:
    source = await make_source(db, project, f"src-{turns}")
    specs = [
        client_turn(f"client says {i} 我很焦虑")
        if i % 2 == 0
        else counselor_turn(f"counselor says {i}")
        for i in range(turns)
    ]
    dialogue = await make_dialogue(db, project, batch, turns=specs)
    for i in range(turns):
        dimension = "emotion" if i % 2 == 0 else "strategy"
        await annotate(db, source, dialogue, i, dimension, labels=["Others"])
    return dialogue


async def test_a_200_turn_dialogue_renders_in_a_constant_number_of_queries(
    client: httpx.AsyncClient,
    db: AsyncSession,
    connection: AsyncConnection,
    project: Project,
    lead: User,
    batch: ImportBatch,
) -> None:
    short = await _long_dialogue(db, project, batch, 4)
    long = await _long_dialogue(db, project, batch, 200)
    await login(client, lead)
    counts = {}
    for dialogue in (short, long):
        with _count_statements(connection) as statements:
            response = await client.get(_url(project, f"/{dialogue.id}"))
        assert response.status_code == 200
        counts[dialogue.turn_count] = len(statements)
        soup = _soup(response)
        labels = [t["aria-label"] for t in soup.select("section.turn")]
        assert labels == [f"Turn {n}" for n in range(1, dialogue.turn_count + 1)]
        assert len(soup.select("section.turn .source")) == dialogue.turn_count
    assert counts[200] == counts[4], counts
    assert counts[200] <= 15, counts
