"""Bodies to records and back, and Accept negotiation, with SageMaker's three media types."""

from __future__ import annotations

import json

import numpy
import pytest

from mlbuild.serving.content_types import (
    CSV,
    JSON,
    JSONLINES,
    MalformedPayload,
    NotAcceptable,
    UnsupportedContentType,
    negotiate,
    parse_records,
    plain,
    request_type,
    serialise,
)


def test_csv_rows_without_header_are_lists_of_strings_and_blank_lines_are_skipped() -> None:
    assert parse_records(b"1,2.5,a\r\n\n4,5,b\n", CSV) == [["1", "2.5", "a"], ["4", "5", "b"]]


def test_quoted_csv_goes_through_the_csv_module() -> None:
    assert parse_records(b'1,"a, b",3\n2,"c",4\n', CSV) == [["1", "a, b", "3"], ["2", "c", "4"]]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"1,2,3\n4,5\n", "CSV row 2 has 2 columns, row 1 has 3"),
        (b'1,"unterminated\n', "malformed CSV"),
        (b"1,\xff\n", "not UTF-8"),
        (b"\n\n", "holds no records"),
    ],
)
def test_malformed_csv_is_a_400_that_says_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload, match=message) as raised:
        parse_records(body, CSV)
    assert raised.value.status == 400


def test_json_takes_a_list_instances_one_object_or_one_bare_row() -> None:
    assert parse_records(b"[[1, 2], [3, 4]]", JSON) == [[1, 2], [3, 4]]
    assert parse_records(b'{"instances": [{"a": 1}]}', JSON) == [{"a": 1}]
    assert parse_records(b'{"a": 1}', JSON) == [{"a": 1}]
    assert parse_records(b"[1, 2, 3]", JSON) == [[1, 2, 3]]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"[1, 2", "malformed JSON: .* line 1"),
        (b'"x"', "list of records or an object"),
        (b"[[1], 2]", "record 2 is a int"),
    ],
)
def test_bad_json_is_a_400(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload, match=message):
        parse_records(body, JSON)


def test_jsonlines_is_one_record_a_line_and_names_the_bad_line() -> None:
    assert parse_records(b'[1, 2]\n\n{"a": 3}\n', JSONLINES) == [[1, 2], {"a": 3}]
    with pytest.raises(MalformedPayload, match="on line 2"):
        parse_records(b"[1]\n[2\n", JSONLINES)


def test_content_types_are_matched_without_parameters_and_aliases_count() -> None:
    assert request_type("text/CSV; charset=utf-8") == CSV
    assert request_type("application/x-jsonlines") == JSONLINES
    for header in ("application/x-protobuf", "", None):
        with pytest.raises(UnsupportedContentType, match="this server takes text/csv") as raised:
            request_type(header)
        assert raised.value.status == 415


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, CSV),
        ("*/*", CSV),
        ("application/json", JSON),
        ("text/html;q=0.9, application/jsonlines;q=0.5", JSONLINES),
        ("application/json;q=0.2, text/csv;q=0.8", CSV),
        ("application/*", JSON),
        ("text/csv;q=0, application/json", JSON),
    ],
)
def test_accept_negotiation_picks_the_best_type_this_server_writes(accept: str, expected: str) -> None:
    assert negotiate(accept, CSV) == expected


def test_an_accept_this_server_cannot_write_is_a_406() -> None:
    with pytest.raises(NotAcceptable, match="Accept 'text/html'") as raised:
        negotiate("text/html", CSV)
    assert raised.value.status == 406


def test_predictions_serialise_to_each_type_from_numpy() -> None:
    predictions = plain(numpy.array([0.25, 1.0]))
    assert serialise(predictions, CSV) == b"0.25\n1.0\n"
    assert json.loads(serialise(predictions, JSON)) == {"predictions": [0.25, 1.0]}
    assert serialise(plain(numpy.array([[1, 2], [3, 4]])), JSONLINES) == b"[1,2]\n[3,4]\n"
    assert serialise(plain(numpy.array(["setosa", "a,b"])), CSV) == b'setosa\n"a,b"\n'


def test_objects_cannot_be_csv() -> None:
    with pytest.raises(NotAcceptable, match="accept application/json"):
        serialise([{"label": 1}], CSV)
