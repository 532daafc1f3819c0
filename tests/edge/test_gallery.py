"""edge.gallery: the enrolled-templates file, its editing, and its validation."""

from __future__ import annotations

import json
import logging
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from fakes import PREPROCESSING

from edge.cards import preprocessing_digest
from edge.errors import GalleryError
from edge.gallery import Gallery
from edge.types import Embedding

SHA = "1a2b3c4d5e6f" + "0" * 52
OTHER_SHA = "9f8e7d6c5b4a" + "1" * 52
D = 128


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def _emb(rng: np.random.Generator, size: int = D, sha: str = SHA) -> Embedding:
    v = rng.normal(size=size)
    return Embedding(
        vector=(v / np.linalg.norm(v)).astype(np.float32),
        model_sha256=sha,
        preprocessing=preprocessing_digest(PREPROCESSING),
    )


@pytest.fixture
def gallery(rng) -> Gallery:
    g = Gallery.empty(SHA, D, PREPROCESSING)
    g.add("alice", [_emb(rng) for _ in range(3)], ["a0.jpg", "a1.jpg", "camera"], max_templates=20)
    g.add("bob", [_emb(rng)], ["camera"], max_templates=20)
    return g


@pytest.fixture
def saved(gallery, tmp_path) -> Path:
    path = tmp_path / "gallery.json"
    gallery.save(path)
    return path


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


def _one_line_error(path: Path, **kw) -> str:
    with pytest.raises(GalleryError) as info:
        Gallery.load(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg


# --------------------------------------------------------------------------- save and load


def test_round_trip_keeps_people_templates_and_order(gallery, saved):
    loaded = Gallery.load(saved, model_sha256=SHA)
    assert loaded.names() == ["alice", "bob"]
    assert (loaded.count("alice"), loaded.count("bob"), loaded.count("carol")) == (3, 1, 0)
    (m0, rows0), (m1, rows1) = gallery.matrix(), loaded.matrix()
    assert rows1 == rows0 == ["alice", "alice", "alice", "bob"]
    assert m1.dtype == np.float32 and m1.shape == (4, D)
    np.testing.assert_allclose(m1, m0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(m1, axis=1), 1.0, atol=1e-6)
    doc = json.loads(saved.read_text())
    assert doc["people"]["alice"]["sources"] == ["a0.jpg", "a1.jpg", "camera"]
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in doc["people"]["alice"]["added"]
    )


def test_saved_file_is_private_inspectable_json(saved, tmp_path):
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    text = saved.read_text()
    doc = json.loads(text)
    assert (doc["schema"], doc["model_sha256"], doc["embedding_size"]) == (2, SHA, D)
    assert doc["preprocessing"] == PREPROCESSING
    # one template per line, floats at most 7 significant digits
    assert len([line for line in text.splitlines() if re.match(r"\s*\[-?\d", line)]) == 4
    assert all(float(f"{x:.7g}") == x for t in doc["people"]["alice"]["templates"] for x in t)


def test_save_creates_a_private_parent_directory(gallery, tmp_path):
    path = tmp_path / "var" / "facegate" / "gallery.json"
    gallery.save(path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert Gallery.load(path).names() == ["alice", "bob"]


def test_save_failure_is_a_gallery_error(gallery, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(GalleryError, match=r"file/gallery.json: cannot save gallery"):
        gallery.save(tmp_path / "file" / "gallery.json")


def test_group_readable_gallery_warns(saved, caplog):
    with caplog.at_level(logging.WARNING, logger="edge.gallery"):
        Gallery.load(saved)
    assert not caplog.records
    saved.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="edge.gallery"):
        Gallery.load(saved)
    assert (
        "gallery.json" in caplog.text
        and "0644" in caplog.text
        and "readable by group/others" in caplog.text
    )


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_gallery_others_can_write_is_refused(saved, mode):
    """Whoever can write the gallery can enroll themselves: refused, as sshd refuses such an authorized_keys."""
    saved.chmod(mode)
    msg = _one_line_error(saved)
    assert f"others can write it (mode {mode:04o})" in msg and msg.endswith(
        f"run chmod 600 {saved}"
    )


def test_a_gallery_in_a_directory_others_can_write_is_refused(saved):
    saved.parent.chmod(0o777)
    try:
        msg = _one_line_error(saved)
        assert f"its directory {saved.parent} is writable by others (mode 0777)" in msg
        saved.parent.chmod(0o1777)  # sticky, as /tmp: others cannot replace a file they do not own
        assert Gallery.load(saved).names() == ["alice", "bob"]
    finally:
        saved.parent.chmod(0o700)


def test_a_gallery_behind_a_symlink_or_not_a_file_is_refused(saved, tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(saved)
    assert _one_line_error(link).endswith(
        "link.json: is a symbolic link; refusing to trust it (use the real path)"
    )
    folder = tmp_path / "folder.json"
    folder.mkdir()
    assert _one_line_error(folder).endswith("folder.json: is a directory, not a regular file")


def test_a_person_named_twice_is_refused_not_last_one_wins(saved):
    text = saved.read_text()
    doubled = text.replace('"bob": {', '"alice": {', 1)
    assert doubled != text
    saved.write_text(doubled)
    assert _one_line_error(saved).endswith(
        "gallery.json: alice: given twice; the second would silently replace the first"
    )


# --------------------------------------------------------------------------- load errors


def test_missing_gallery_says_to_enroll(tmp_path):
    msg = _one_line_error(tmp_path / "gallery.json")
    assert msg.endswith("gallery.json: no gallery; enroll someone first (facegate enroll NAME)")


def test_gallery_of_another_model_says_to_re_enroll(saved):
    msg = _one_line_error(saved, model_sha256=OTHER_SHA)
    assert msg.endswith(
        "gallery.json: model_sha256: enrolled with model 1a2b3c4d5e6f…, the embedder is 9f8e7d6c5b4a…; "
        "enroll everyone again (facegate enroll NAME)"
    )


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda p: p.update(color="BGR"), "color"),
        (lambda p: p["crop"].update(margin=0.2), "crop"),
        (lambda p: p["normalization"].update(std=128.0), "normalization"),
        (lambda p: p.update(input_size=[160, 160]), "input_size"),
        (lambda p: p.update(flip_average=True), "flip_average"),
    ],
)
def test_templates_are_bound_to_the_preprocessing(saved, change, field):
    """The same weights with another crop, colour order or normalisation must not match old templates."""
    card = json.loads(json.dumps(PREPROCESSING))
    change(card)
    msg = _one_line_error(saved, model_sha256=SHA, preprocessing=card)
    assert f"gallery.json: preprocessing.{field}: enrolled with " in msg and msg.endswith(
        "enroll everyone again (facegate enroll NAME)"
    )
    assert Gallery.load(saved, model_sha256=SHA, preprocessing=PREPROCESSING).names() == [
        "alice",
        "bob",
    ]


def test_embedding_from_other_preprocessing_is_neither_added_nor_matched(gallery, rng):
    from edge.match import match

    v = rng.normal(size=D)
    other = Embedding(
        vector=(v / np.linalg.norm(v)).astype(np.float32),
        model_sha256=SHA,
        preprocessing="0123456789abcdef",
    )
    with pytest.raises(
        GalleryError, match="embedding 0: preprocessing: made with other preprocessing"
    ):
        gallery.add("carol", [other], ["camera"], max_templates=20)
    with pytest.raises(
        GalleryError, match="preprocessing: the templates were made with another crop"
    ):
        match(other, gallery)


def test_not_json_names_the_line(tmp_path):
    path = tmp_path / "gallery.json"
    path.write_text('{\n  "schema": 1,\n  "people": {oops}\n}\n')
    assert _one_line_error(path).endswith("gallery.json: not valid JSON (line 3)")


def _set_template(doc, index, value):
    doc["people"]["alice"]["templates"][index] = value


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.update(schema=3), "schema: expected 2, got 3"),
        (lambda d: d.pop("schema"), "schema: expected 2, got None"),
        (
            lambda d: d.update(schema=1),
            "schema: 1 records the embedder's weights but not its preprocessing",
        ),
        (
            lambda d: d.pop("preprocessing"),
            "preprocessing: expected the embedder card's preprocessing",
        ),
        (
            lambda d: d.update(preprocessing=[]),
            "preprocessing: expected the embedder card's preprocessing",
        ),
        (
            lambda d: d.update(embedding_size="128"),
            "embedding_size: expected a positive integer, got '128'",
        ),
        (lambda d: d.update(model_sha256=""), "model_sha256: expected a non-empty string"),
        (lambda d: d.update(people=[]), "people: expected an object"),
        (lambda d: d.update(extra=1), "extra: unknown field"),
        (
            lambda d: d["people"].update({"bad/name": d["people"]["bob"]}),
            "people: invalid name 'bad/name'",
        ),
        (lambda d: d["people"].update(bob=[]), "people.bob: expected an object, got list"),
        (
            lambda d: d["people"]["bob"].update(templates=[]),
            "people.bob.templates: expected a non-empty list",
        ),
        (
            lambda d: _set_template(d, 2, [0.125] * 64),
            "people.alice.templates[2]: expected 128 numbers, got 64",
        ),
        (
            lambda d: _set_template(d, 1, ["x"] * 128),
            "people.alice.templates[1]: expected a list of numbers",
        ),
        (
            lambda d: _set_template(d, 0, [0.5] * 128),
            "people.alice.templates[0]: not unit length (norm 5.6569)",
        ),
        (
            lambda d: d["people"]["alice"].update(added=["t"]),
            "people.alice.added: expected 3 entries (one per template), got 1",
        ),
        (
            lambda d: d["people"]["alice"].update(sources=[1, 2, 3]),
            "people.alice.sources: expected a list of strings",
        ),
    ],
)
def test_invalid_gallery_names_file_and_field(saved, change, expected):
    _edit(saved, change)
    msg = _one_line_error(saved)
    assert msg.startswith(f"{saved}: {expected}")


def test_non_finite_template_is_refused(saved):
    doc = json.loads(saved.read_text())
    doc["people"]["bob"]["templates"][0][5] = float("nan")
    saved.write_text(json.dumps(doc))  # Python writes NaN, which its reader accepts
    assert "people.bob.templates[0]: holds a non-finite value" in _one_line_error(saved)


@pytest.mark.parametrize("huge", ["1" + "0" * 400, "-" + "9" * 309])
def test_an_integer_beyond_a_float_is_a_gallery_error_naming_the_field(saved, huge):
    """10**400 in a template was an OverflowError (an internal error, exit 1), not a gallery error."""
    doc = json.loads(saved.read_text())
    doc["people"]["bob"]["templates"][0][5] = 7.0  # replaced by the huge integer, as text
    saved.write_text(json.dumps(doc).replace("7.0", huge, 1))
    assert "people.bob.templates[0]: holds a non-finite value" in _one_line_error(saved)


def test_an_integer_of_more_digits_than_python_parses_is_a_gallery_error(saved):
    saved.write_text(saved.read_text().replace("[", "[" + "1" * 5000 + ", ", 1))
    assert "not valid JSON" in _one_line_error(saved)


# --------------------------------------------------------------------------- editing


def test_add_keeps_the_newest_templates(rng):
    g = Gallery.empty(SHA, D, PREPROCESSING)
    first = [_emb(rng) for _ in range(3)]
    second = [_emb(rng) for _ in range(2)]
    g.add("alice", first, ["s0", "s1", "s2"], max_templates=4)
    g.add("alice", second, ["s3", "s4"], max_templates=4)
    assert g.count("alice") == 4
    m, _rows = g.matrix()
    expected = np.stack([e.vector for e in first[1:] + second])
    np.testing.assert_allclose(m, expected, atol=1e-6)
    doc = json.loads(g.to_json())
    assert doc["people"]["alice"]["sources"] == ["s1", "s2", "s3", "s4"]
    assert len(doc["people"]["alice"]["added"]) == 4


@pytest.mark.parametrize(
    "embeddings, sources, pattern",
    [
        (
            lambda r: [_emb(r, sha=OTHER_SHA)],
            ["camera"],
            r"embedding 0: model_sha256: .*enroll everyone again",
        ),
        (lambda r: [_emb(r, size=64)], ["camera"], r"embedding 0: expected 128 numbers, got 64"),
        (
            lambda r: [
                Embedding(np.full(D, 0.5, np.float32), SHA, preprocessing_digest(PREPROCESSING))
            ],
            ["camera"],
            r"not unit length",
        ),
        (lambda r: [_emb(r), _emb(r)], ["camera"], r"2 embeddings but 1 sources"),
        (lambda r: [], [], r"no embeddings"),
    ],
)
def test_add_refuses_bad_embeddings(rng, embeddings, sources, pattern):
    g = Gallery.empty(SHA, D, PREPROCESSING)
    with pytest.raises(GalleryError, match=pattern):
        g.add("alice", embeddings(rng), sources, max_templates=5)
    assert g.names() == []


@pytest.mark.parametrize("name", ["Alice", "Anne-Marie O.", "bob_2", "José", "x" * 64])
def test_valid_names(rng, name):
    g = Gallery.empty(SHA, D, PREPROCESSING)
    g.add(name, [_emb(rng)], ["camera"], max_templates=5)
    assert g.names() == [name]


@pytest.mark.parametrize("name", ["", " bob", "bob ", "a/b", "a\nb", "x" * 65, "<script>", "a,b"])
def test_invalid_names_are_refused(rng, name):
    g = Gallery.empty(SHA, D, PREPROCESSING)
    with pytest.raises(GalleryError, match=re.escape(repr(name))):
        g.add(name, [_emb(rng)], ["camera"], max_templates=5)


def test_remove_and_rename(gallery):
    alice = gallery.matrix()[0][:3].copy()
    gallery.rename("alice", "Alice B")
    assert gallery.names() == ["Alice B", "bob"]
    np.testing.assert_array_equal(gallery.matrix()[0][:3], alice)
    gallery.remove("bob")
    assert gallery.names() == ["Alice B"] and gallery.matrix()[1] == ["Alice B"] * 3


def test_remove_or_rename_of_unknown_name_is_refused(gallery):
    with pytest.raises(GalleryError, match=r"'carol' is not enrolled \(enrolled: alice, bob\)"):
        gallery.remove("carol")
    with pytest.raises(GalleryError, match=r"'carol' is not enrolled"):
        gallery.rename("carol", "dave")


def test_rename_onto_an_existing_name_is_refused(gallery):
    with pytest.raises(GalleryError, match=r"'bob' is already enrolled"):
        gallery.rename("alice", "bob")
    with pytest.raises(GalleryError, match=r"invalid name ' x'"):
        gallery.rename("alice", " x")
    assert gallery.names() == ["alice", "bob"]


def test_matrix_is_cached_until_modified(gallery, rng):
    m1, _ = gallery.matrix()
    assert gallery.matrix()[0] is m1
    assert not m1.flags.writeable
    gallery.add("carol", [_emb(rng)], ["camera"], max_templates=5)
    m2, rows = gallery.matrix()
    assert m2 is not m1 and m2.shape == (5, D) and rows[-1] == "carol"


def test_empty_gallery_matrix_has_no_rows():
    m, rows = Gallery.empty(SHA, D, PREPROCESSING).matrix()
    assert m.shape == (0, D) and rows == []


def test_what_the_embedder_and_config_could_never_have_made_is_refused(saved):
    msg = _one_line_error(saved, embedding_size=512)
    assert msg.endswith(
        "gallery.json: embedding_size: 128, but the embedder gives 512; enroll everyone again (facegate enroll NAME)"
    )
    msg = _one_line_error(saved, max_templates=2)
    assert msg.endswith(
        "people.alice.templates: 3 templates, more than gallery.max_templates_per_person (2)"
    )
    assert Gallery.load(saved, embedding_size=D, max_templates=3).names() == ["alice", "bob"]
