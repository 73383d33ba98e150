"""The model half of the pipeline against insightface, on the real pack and photos."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from edge.pipeline.detector import DEFAULT_DET_MAX_SIDE, detector_input_size
from edge.pipeline.embedder import FaceEmbedder, similarity_transform
from edge.pipeline.pack import ModelPackError, load_model_pack
from edge.pipeline.runtime import BoundSession, choose_providers, create_session
from tests.conftest import CLIP, MEDIA_DIR, MODELS_DIR

DETECTOR = MODELS_DIR / "scrfd_2.5g_bnkps.onnx"
EMBEDDER = MODELS_DIR / "mobilefacenet.onnx"
PHOTOS = sorted(p.name for p in MEDIA_DIR.iterdir() if p.suffix in (".jpg", ".png"))
EXPECTED_FACES = {"obama_and_biden.jpg": 3, "two_people.jpg": 2}


# The conftest ``pack`` fixture. insightface's reference runs at 640: compare like with like
# (the shipped default is 512).
PACK_OPTIONS = {"threads": 0, "det_max_side": 640}


@pytest.fixture(scope="module")
def reference():
    """insightface's SCRFD and ArcFaceONNX on the same files (the reference)."""
    insightface_zoo = pytest.importorskip("insightface.model_zoo")
    detector = insightface_zoo.get_model(str(DETECTOR))
    detector.prepare(ctx_id=-1, input_size=(640, 640))
    recogniser = insightface_zoo.get_model(str(EMBEDDER))
    recogniser.prepare(ctx_id=-1)
    return detector, recogniser


@pytest.fixture(scope="module")
def images():
    return {name: cv2.imread(str(MEDIA_DIR / name)) for name in PHOTOS}


@pytest.fixture(scope="module")
def reference_detections(reference, images):
    """insightface SCRFD detect() per photo: (det (N,5), kps (N,5,2)), computed once."""
    return {name: reference[0].detect(image) for name, image in images.items()}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def reference_embedding(recogniser, image: np.ndarray, kps: np.ndarray) -> np.ndarray:
    from insightface.utils import face_align

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # skimage's estimate() deprecation
        crop = face_align.norm_crop(image, kps)
    feat = recogniser.get_feat(crop).reshape(-1)
    return feat / np.linalg.norm(feat)


def test_photos_present():
    assert len(PHOTOS) == 7, PHOTOS


@pytest.mark.parametrize("name", PHOTOS)
def test_detections_match_insightface(pack, reference_detections, images, name):
    image = images[name]
    ours = pack.detector.detect(image, threshold=0.5)
    ref_det, ref_kps = reference_detections[name]
    assert len(ours) == len(ref_det) == EXPECTED_FACES.get(name, 1)
    assert ours.boxes.shape == (len(ours), 4) and ours.kps.shape == (len(ours), 5, 2)
    for box, score in zip(ours.boxes, ours.scores):
        overlaps = [iou(box, ref[:4]) for ref in ref_det]
        best = int(np.argmax(overlaps))
        assert overlaps[best] >= 0.9, (name, box, ref_det[best])
        assert abs(float(score) - float(ref_det[best, 4])) < 0.1
    assert list(ours.scores) == sorted(ours.scores, reverse=True)


@pytest.mark.parametrize("name", PHOTOS)
def test_embeddings_match_insightface(pack, reference, reference_detections, images, name):
    """Alignment + embedding on the same keypoints: norm_crop + get_feat parity."""
    image = images[name]
    ref_det, ref_kps = reference_detections[name]
    ours = pack.embedder.embed(image, ref_kps.astype(np.float32))
    assert ours.dtype == np.float32 and ours.shape == (len(ref_kps), 128)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    for i, kps in enumerate(ref_kps):
        cosine = float(ours[i] @ reference_embedding(reference[1], image, kps))
        assert cosine >= 0.99, (name, i, cosine)


def test_end_to_end_embeddings_close_to_reference(pack, reference, reference_detections, images):
    """Our detector's keypoints (on our padded input) + our embedder vs insightface's
    whole path: the same faces, near-identical embeddings."""
    for name, image in images.items():
        ours = pack.detector.detect(image)
        boxes, kps = ours.boxes.copy(), ours.kps.copy()
        emb = pack.embedder.embed(image, kps)
        ref_det, ref_kps = reference_detections[name]
        for i, box in enumerate(boxes):
            j = int(np.argmax([iou(box, ref[:4]) for ref in ref_det]))
            cosine = float(emb[i] @ reference_embedding(reference[1], image, ref_kps[j]))
            assert cosine >= 0.95, (name, i, cosine)


def test_alignment_equals_skimage_similarity_transform():
    transform = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(7)
    from edge.pipeline.embedder import ARCFACE_TEMPLATE

    for i in range(40):
        src = ARCFACE_TEMPLATE * rng.uniform(0.5, 4.0) + rng.uniform(-200, 200, size=2)
        src = src + rng.normal(0, 3.0, size=src.shape)
        angle = rng.uniform(-np.pi, np.pi)
        src = src @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        if i % 4 == 0:  # mirrored keypoints: the best proper rotation, no reflection
            src[:, 0] = -src[:, 0]
        tform = transform.SimilarityTransform()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            tform.estimate(src, ARCFACE_TEMPLATE)
        assert np.allclose(similarity_transform(src), tform.params[:2], atol=1e-6)


def test_same_person_above_threshold_different_people_below(pack, images):
    def embedding(name: str) -> np.ndarray:
        det = pack.detector.detect(images[name])
        assert len(det) == 1, name
        return pack.embedder.embed(images[name], det.kps)[0].copy()

    obama, obama2 = embedding("obama.jpg"), embedding("obama2.jpg")
    biden, lin, alex = embedding("biden.jpg"), embedding("lin-manuel-miranda.png"), embedding("alex-lacamoire.png")
    assert float(obama @ obama2) > 0.40
    for a, b in [(obama, biden), (obama2, biden), (obama, lin), (obama, alex), (lin, alex), (biden, lin)]:
        assert float(a @ b) < 0.40


def test_detector_pads_only_to_a_multiple_of_32(pack):
    capture = cv2.VideoCapture(str(CLIP))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (360, 640, 3)
    pack.detector.detect(frame)
    assert pack.detector.input_tensor().shape == (1, 3, 384, 640)
    assert pack.detector.input_shape == [1, 3, 384, 640]
    assert detector_input_size(1280, 720, 640) == (640, 360, 640, 384)
    assert detector_input_size(970, 2204, 640) == (281, 640, 288, 640)
    assert detector_input_size(424, 394, 640) == (424, 394, 448, 416)  # never scaled up


def test_default_input_is_512_and_a_camera_may_ask_for_its_own(images):
    """The shipped default runs a 640x360 frame at 512x288; ``max_side`` per call (a camera's
    det_max_side) runs it at 640x384, and each shape keeps its own reused input buffer."""
    default = load_model_pack(MODELS_DIR, threads=0)
    assert default.detector.max_side == DEFAULT_DET_MAX_SIDE == 512
    capture = cv2.VideoCapture(str(CLIP))
    ok, frame = capture.read()
    capture.release()
    assert ok
    default.detector.detect(frame)
    small = default.detector.input_tensor()
    assert small.shape == (1, 3, 288, 512)
    default.detector.detect(frame, max_side=640)
    assert default.detector.input_tensor().shape == (1, 3, 384, 640)
    default.detector.detect(frame)
    assert default.detector.input_tensor() is small
    for name, count in EXPECTED_FACES.items():
        assert len(default.detector.detect(images[name])) == count, name


def test_preprocessing_reuses_the_bound_input_buffer(pack):
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    for _ in range(3):
        ok, frame = capture.read()
        assert ok
        frames.append(frame)
    capture.release()
    pack.detector.detect(frames[0])
    tensor = pack.detector.input_tensor()
    pointer = tensor.ctypes.data
    first_plane = tensor[0, 0].copy()
    outputs = pack.detector.bound.output_buffers
    output_pointers = [o.ctypes.data for o in outputs]
    first_scores = outputs[0].copy()
    timings: dict[str, float] = {}
    for frame in frames[1:] + [np.ascontiguousarray(frames[0][:, ::-1])]:
        pack.detector.detect(frame, timings=timings)
        assert pack.detector.input_tensor() is tensor
        assert tensor.ctypes.data == pointer
        # ORT wrote the outputs into the same bound arrays
        assert [o.ctypes.data for o in pack.detector.bound.output_buffers] == output_pointers
    assert not np.array_equal(first_scores, outputs[0])
    # the content did change (a different frame was written in place)
    assert not np.array_equal(first_plane, tensor[0, 0])
    assert set(timings) == {"preprocess", "detect"} and all(v > 0 for v in timings.values())
    # padding rows hold normalised black, as insightface's zero padding does
    assert np.allclose(tensor[0, :, 360:, :], -127.5 / 128.0)


def test_detections_are_views_of_preallocated_arrays(pack, images):
    first = pack.detector.detect(images["two_people.jpg"])
    base = first.boxes.base
    second = pack.detector.detect(images["obama_and_biden.jpg"])
    assert second.boxes.base is base and len(second) == 3


def test_embedder_reuses_buffers_and_crops(pack, images):
    image = images["two_people.jpg"]
    det = pack.detector.detect(image)
    emb = pack.embedder.embed(image, det.kps)
    crops = pack.embedder.aligned_crops()
    assert crops.shape == (2, 112, 112, 3) and crops.dtype == np.uint8
    emb_again = pack.embedder.embed(image, det.kps)
    assert emb_again.ctypes.data == emb.ctypes.data
    assert pack.embedder.aligned_crops().ctypes.data == crops.ctypes.data
    assert pack.embedder.embed(image, np.zeros((0, 5, 2), np.float32)).shape == (0, 128)


def test_dynamic_batch_embedder_matches_one_by_one(pack, images, tmp_path):
    """An embedder exported with a dynamic batch runs all faces in one call, same results."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(EMBEDDER))
    for node in model.graph.node:  # the export flattens with a fixed (1, -1) reshape
        if node.op_type == "Constant" and node.output[0] == "/Constant_output_0":
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([-1, 128], dtype=np.int64)))
    for value in list(model.graph.input) + list(model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    path = tmp_path / "mobilefacenet_dynamic.onnx"
    onnx.save(model, str(path))
    batched = FaceEmbedder(BoundSession(create_session(path), path), max_faces=4)
    assert batched.dynamic_batch and batched.dim == 128

    image = images["obama_and_biden.jpg"]
    det = pack.detector.detect(image)
    expected = pack.embedder.embed(image, det.kps).copy()
    got = batched.embed(image, det.kps)
    assert got.shape == (3, 128)
    assert np.allclose(got, expected, atol=1e-5)
    got_two = batched.embed(image, det.kps[:2])  # a smaller batch over the same memory
    assert np.allclose(got_two, expected[:2], atol=1e-5)


def test_pack_info(pack):
    info = pack.info()
    assert info["models_dir"] == str(MODELS_DIR)
    assert info["detector"]["file"] == "scrfd_2.5g_bnkps.onnx"
    assert info["embedder"] == {"file": "mobilefacenet.onnx", "provider": "CPUExecutionProvider",
                                "dim": 128, "backend": "mobilefacenet"}
    assert info["detector"]["provider"] == "CPUExecutionProvider"
    assert len(info["detector"]["input_shape"]) == 4


# -- providers ----------------------------------------------------------------------

def test_provider_order_and_filtering():
    available = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider",
                 "AzureExecutionProvider"]
    assert choose_providers(None, available) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    # the settings list filters; the preference order stays
    assert choose_providers(["CPUExecutionProvider", "CUDAExecutionProvider"], available) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["OpenVINOExecutionProvider"], available) == ["CPUExecutionProvider"]


def test_gpu_providers_fall_back_to_cpu_on_this_machine():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA; the fallback test is for CPU-only machines")
    small = load_model_pack(MODELS_DIR, providers=["TensorrtExecutionProvider", "CUDAExecutionProvider"],
                            threads=1, max_faces=2)
    info = small.info()
    assert info["detector"]["provider"] == "CPUExecutionProvider"
    assert info["embedder"]["provider"] == "CPUExecutionProvider"
    options = small.detector.bound.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


# -- pack errors --------------------------------------------------------------------

def test_missing_pack_directory_is_named(tmp_path):
    missing = tmp_path / "no-such-pack"
    with pytest.raises(ModelPackError, match=str(missing)):
        load_model_pack(missing)


def test_empty_pack_directory_is_named(tmp_path):
    with pytest.raises(ModelPackError, match=rf"{tmp_path}.*no \.onnx files"):
        load_model_pack(tmp_path)


def test_missing_detector_names_directory_and_files(tmp_path):
    (tmp_path / "mobilefacenet.onnx").symlink_to(EMBEDDER)
    with pytest.raises(ModelPackError) as err:
        load_model_pack(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "no usable detector" in message
    assert "mobilefacenet.onnx: input 1x3x112x112" in message


def test_missing_embedder_names_directory(tmp_path):
    (tmp_path / "scrfd_2.5g_bnkps.onnx").symlink_to(DETECTOR)
    with pytest.raises(ModelPackError, match=rf"{tmp_path}: no usable embedder"):
        load_model_pack(tmp_path)


def test_corrupted_model_file_is_named(tmp_path):
    (tmp_path / "scrfd_2.5g_bnkps.onnx").write_bytes(DETECTOR.read_bytes()[:50_000])
    (tmp_path / "mobilefacenet.onnx").symlink_to(EMBEDDER)
    with pytest.raises(ModelPackError) as err:
        load_model_pack(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "scrfd_2.5g_bnkps.onnx: cannot load" in message


def test_explicit_file_of_the_wrong_kind_is_named(tmp_path):
    (tmp_path / "a.onnx").symlink_to(DETECTOR)
    (tmp_path / "b.onnx").symlink_to(EMBEDDER)
    with pytest.raises(ModelPackError, match=r"b\.onnx is not a detector"):
        load_model_pack(tmp_path, detector_file="b.onnx")


def test_pack_found_by_signature_not_by_name(tmp_path):
    """Files named like an InsightFace buffalo pack (detector name sorts after the embedder)."""
    (tmp_path / "det_10g.onnx").symlink_to(DETECTOR)
    (tmp_path / "aaa_w600k_r50.onnx").symlink_to(EMBEDDER)
    found = load_model_pack(tmp_path, max_faces=1)
    assert found.detector.file == "det_10g.onnx"
    assert found.embedder.file == "aaa_w600k_r50.onnx" and found.embedder.backend == "aaa_w600k_r50"


def test_frame_sizes_sharing_an_input_shape_keep_correct_padding(pack, images):
    """640x370 and 640x360 frames both run at 640x384: after the taller one, the shorter
    one's padding rows must be black again, so its faces match a fresh detector's."""
    image = images["two_people.jpg"]
    short = cv2.resize(image, (640, 360))
    tall = cv2.resize(image, (640, 370))
    expected = pack.detector.detect(short)
    expected_boxes = expected.boxes.copy()
    pack.detector.detect(tall)
    tensor = pack.detector.input_tensor()
    again = pack.detector.detect(short)
    assert pack.detector.input_tensor() is tensor
    assert np.allclose(tensor[0, :, 360:, :], -127.5 / 128.0)
    assert np.allclose(again.boxes, expected_boxes)
