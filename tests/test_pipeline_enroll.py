"""Enrolment CLI, face store and gallery on real SQLite files and the real pack."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import load_settings
from edge.db import connect
from edge.db import faces as store
from edge.db.migrate import migrate_database
from edge.pipeline.enroll import EnrollError, analyse_image, enroll, remove, validate_name
from edge.pipeline.gallery import Gallery, GalleryMismatchError
from tests.conftest import MEDIA_DIR
from tests.support.cli import call_main, run_cli

OBAMA = MEDIA_DIR / "obama.jpg"
OBAMA2 = MEDIA_DIR / "obama2.jpg"
BIDEN = MEDIA_DIR / "biden.jpg"
LIN = MEDIA_DIR / "lin-manuel-miranda.png"
TWO = MEDIA_DIR / "two_people.jpg"


PACK_OPTIONS = {"max_faces": 4}  # the conftest ``pack`` fixture


@pytest.fixture
def settings_path(write_settings):
    return write_settings()


@pytest.fixture
def db(settings_path):
    settings = load_settings(settings_path)
    migrate_database(settings)
    conn = connect(settings.db_path)
    yield conn
    conn.close()


@pytest.fixture
def no_face_image(tmp_path) -> Path:
    path = tmp_path / "wall.png"
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    cv2.imwrite(str(path), cv2.merge([gradient, gradient // 2, 255 - gradient]))
    return path


def face_files(data_dir: Path) -> list[Path]:
    root = data_dir / "faces"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- CLI ------------------------------------------------------------------------------

def test_enroll_one_face(settings_path, data_dir, capsys):
    assert call_main(settings_path, "enroll", "Barack Obama", str(OBAMA), str(OBAMA2)) == 0
    out = capsys.readouterr().out
    assert "enrolled Barack Obama: 2 face(s) added (backend mobilefacenet, dim 128)" in out
    files = face_files(data_dir)
    assert len(files) == 2 and all(f.parent == data_dir / "faces" / "Barack Obama" for f in files)
    crop = cv2.imread(str(files[0]))
    assert crop.shape == (112, 112, 3)

    conn = connect(data_dir / "facepro.db")
    rows = conn.execute("SELECT u.name, f.encoding, f.embedding_dim, f.backend, f.image_path FROM face_encodings f"
                        " JOIN users u ON u.id = f.user_id ORDER BY f.id").fetchall()
    conn.close()
    assert [r["name"] for r in rows] == ["Barack Obama"] * 2
    for row in rows:
        vector = np.frombuffer(row["encoding"], dtype="<f4")
        assert vector.size == row["embedding_dim"] == 128 and row["backend"] == "mobilefacenet"
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        assert (data_dir / "faces" / row["image_path"]).is_file()
        assert row["image_path"].startswith("Barack Obama/")


@pytest.mark.parametrize("case", ["no_face", "two_faces", "unreadable", "missing"])
def test_enroll_rejects_bad_images_and_writes_nothing(case, settings_path, data_dir, no_face_image,
                                                      tmp_path, capsys):
    assert call_main(settings_path, "enroll", "obama", str(OBAMA)) == 0
    before_files = face_files(data_dir)
    capsys.readouterr()
    bad = {
        "no_face": no_face_image,
        "two_faces": TWO,
        "unreadable": tmp_path / "broken.jpg",
        "missing": tmp_path / "nope.jpg",
    }[case]
    if case == "unreadable":
        bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    # a good image first: nothing of it may be written either
    code = call_main(settings_path, "enroll", "biden", str(BIDEN), str(bad))
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err and err.count("\n") == 1
    expected = {"no_face": "no face found", "two_faces": "2 faces found",
                "unreadable": "cannot read the image", "missing": "no such image file"}[case]
    assert expected in err
    assert face_files(data_dir) == before_files
    conn = connect(data_dir / "facepro.db")
    assert [r[0] for r in conn.execute("SELECT name FROM users")] == ["obama"]
    assert conn.execute("SELECT COUNT(*) FROM face_encodings").fetchone()[0] == 1
    conn.close()


def test_rejected_first_enrolment_creates_no_database(settings_path, data_dir, capsys):
    assert call_main(settings_path, "enroll", "pair", str(TWO)) == 2
    assert "two_people.jpg: 2 faces found" in capsys.readouterr().err
    assert not (data_dir / "facepro.db").exists()
    assert face_files(data_dir) == []


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "x" * 65])
def test_enroll_rejects_bad_names(name, settings_path, data_dir, capsys):
    assert call_main(settings_path, "enroll", name, str(OBAMA)) == 2
    assert "name" in capsys.readouterr().err
    assert face_files(data_dir) == []


def test_users_list_and_remove(settings_path, data_dir, capsys):
    assert call_main(settings_path, "users", "list") == 0
    assert "no one enrolled" in capsys.readouterr().out
    assert call_main(settings_path, "enroll", "obama", str(OBAMA), str(OBAMA2)) == 0
    assert call_main(settings_path, "enroll", "lin", str(LIN)) == 0
    capsys.readouterr()

    assert call_main(settings_path, "users", "list", "--json") == 0
    users = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["embeddings"], u["dims"], u["backends"]) for u in users] == [
        ("lin", 1, [128], ["mobilefacenet"]), ("obama", 2, [128], ["mobilefacenet"])]
    assert all((data_dir / "faces" / img).is_file() for u in users for img in u["images"])

    assert call_main(settings_path, "users", "list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("NAME") and table[1].startswith("lin") and table[2].startswith("obama")

    assert call_main(settings_path, "users", "remove", "nobody") == 2
    assert "no enrolled person named 'nobody'" in capsys.readouterr().err

    assert call_main(settings_path, "users", "remove", "obama") == 0
    assert "removed obama: 2 face(s)" in capsys.readouterr().out
    assert not (data_dir / "faces" / "obama").exists()
    assert (data_dir / "faces" / "lin").is_dir()
    conn = connect(data_dir / "facepro.db")
    assert conn.execute("SELECT COUNT(*) FROM face_encodings").fetchone()[0] == 1
    conn.close()
    assert call_main(settings_path, "users", "list", "--json") == 0
    assert [u["name"] for u in json.loads(capsys.readouterr().out)] == ["lin"]


def test_enroll_console_script_exit_code(settings_path, tmp_path):
    """The real `facepro` process: exit 2 and one error line naming the image."""
    proc = run_cli(settings_path, "enroll", "pair", str(TWO))
    assert proc.returncode == 2
    assert f"facepro: error: {TWO}: 2 faces found" in proc.stderr


# -- library: enrol, gallery ---------------------------------------------------------

def test_validate_name():
    assert validate_name("  Lin-Manuel Miranda ") == "Lin-Manuel Miranda"
    with pytest.raises(EnrollError):
        validate_name("..")


def test_enroll_publishes_on_the_bus_and_gallery_reloads(db, data_dir, pack):
    from edge.bus import EventBus

    bus = EventBus()
    seen: list[dict] = []
    bus.subscribe("enroll", seen.append)
    gallery = Gallery.load(db, pack.embedder.dim, pack.embedder.backend)
    assert len(gallery) == 0 and not gallery.changed(db)
    idx, scores = gallery.match(np.ones((2, 128), np.float32) / np.sqrt(128))
    assert list(idx) == [-1, -1] and list(scores) == [-1.0, -1.0]

    enroll(db, pack, data_dir, "obama", [OBAMA], bus=bus)
    assert seen and seen[-1]["name"] == "obama"
    assert gallery.changed(db)
    gallery = gallery.reload_if_changed(db)
    assert len(gallery) == 1 and gallery.names == ["obama"]
    assert gallery.reload_if_changed(db) is gallery

    enroll(db, pack, data_dir, "biden", [BIDEN], bus=bus)
    gallery = gallery.reload_if_changed(db)
    sample = analyse_image(pack, OBAMA2)
    lin = analyse_image(pack, LIN)
    idx, scores = gallery.match(np.stack([sample.embedding, lin.embedding]))
    assert gallery.person(int(idx[0])) == "obama" and scores[0] > 0.40
    assert scores[1] < 0.40  # Lin-Manuel Miranda is nobody here

    remove(db, data_dir, "obama", bus=bus)
    assert seen[-1] == {"name": "obama", "action": "remove"}
    gallery = gallery.reload_if_changed(db)
    assert gallery.names == ["biden"]


def test_gallery_match_is_the_best_row_by_cosine():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(500, 128)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    names = [f"p{i // 5}" for i in range(500)]
    gallery = Gallery(128, "test", matrix, names, list(range(500)), max_queries=4)
    queries = matrix[[7, 123, 499]] + rng.normal(scale=0.05, size=(3, 128)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    idx, scores = gallery.match(queries)
    expected = queries @ matrix.T
    assert list(idx) == list(expected.argmax(axis=1)) == [7, 123, 499]
    assert np.allclose(scores, expected.max(axis=1), atol=1e-6)
    assert gallery.person(123) == "p24" and gallery.person(-1) is None
    # more queries than preallocated: still right
    many = np.repeat(queries, 3, axis=0)
    idx, _ = gallery.match(many)
    assert list(idx) == [7, 7, 7, 123, 123, 123, 499, 499, 499]


def test_gallery_refuses_embeddings_of_another_model(db):
    old = np.ones(512, np.float32) / np.sqrt(512)
    store.enroll_rows(db, "old-timer", [store.NewEncoding(old, None)], "w600k_r50")
    same_dim_other_model = np.ones(128, np.float32) / np.sqrt(128)
    store.enroll_rows(db, "other", [store.NewEncoding(same_dim_other_model, None)], "dlib")
    mine = np.zeros(128, np.float32)
    mine[0] = 1.0
    store.enroll_rows(db, "current", [store.NewEncoding(mine, None)], "mobilefacenet")

    gallery = Gallery.load(db, 128, "mobilefacenet")
    assert gallery.names == ["current"] and gallery.refused == 2
    message = gallery.warnings[0]
    assert "dim 512, backend w600k_r50" in message and "dim 128, backend dlib" in message
    assert "produces dim 128, backend mobilefacenet" in message and "re-enrol" in message
    with pytest.raises(GalleryMismatchError, match="another model"):
        Gallery.load(db, 128, "mobilefacenet", strict=True)
    with pytest.raises(GalleryMismatchError, match="cannot match 512-d embeddings against a gallery of 128-d"):
        gallery.match(old.reshape(1, -1))

    big = Gallery.load(db, 512, "w600k_r50")
    assert big.names == ["old-timer"] and big.refused == 2
    idx, scores = big.match(old)
    assert big.person(int(idx[0])) == "old-timer" and scores[0] == pytest.approx(1.0)


def test_gallery_notices_changes_made_by_another_connection(db, settings_path, data_dir, pack):
    """The CLI enrols in its own process: the service's connection must see it."""
    gallery = Gallery.load(db, pack.embedder.dim, pack.embedder.backend)
    assert not gallery.changed(db) and not gallery.changed(db)
    # unrelated writes by another connection: checked, found unchanged
    other = connect(data_dir / "facepro.db")
    other.execute("INSERT INTO events (event_type, object_label) VALUES ('face_unknown', 'unknown')")
    assert not gallery.changed(db)
    other.close()

    assert call_main(settings_path, "enroll", "obama", str(OBAMA)) == 0
    assert gallery.changed(db)
    gallery = gallery.reload_if_changed(db)
    assert gallery.names == ["obama"] and not gallery.changed(db)

    assert call_main(settings_path, "users", "remove", "obama") == 0
    assert gallery.changed(db)
    assert len(gallery.reload_if_changed(db)) == 0


def test_enroll_without_a_model_pack_names_the_directory(write_settings, tmp_path, data_dir, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    settings_path = write_settings({"paths": {"data_dir": str(data_dir), "models_dir": str(empty)}})
    assert call_main(settings_path, "enroll", "obama", str(OBAMA)) == 1
    err = capsys.readouterr().err
    assert str(empty) in err and "no .onnx files" in err
    assert face_files(data_dir) == [] and not (data_dir / "facepro.db").exists()
