#!/usr/bin/python3
"""Builds tiny ONNX test models with the signatures of insightface's models (tests/testdata/models/, committed;
the tests need no python). Each computes something trivial and known, so a test can check what the service
feeds them and how it reads their outputs.

  arcface_test.onnx    ArcFace (w600k_*) signature: input "input.1" [N,3,112,112] -> output "embedding" [N,512]:
                       the 16x16 average pools of the normalised RGB planes (3x7x7 = 147 values, R first),
                       then 365 zeros. A uniform crop gives 49 x R, 49 x G, 49 x B: the RGB order and the
                       (x - 127.5) / 127.5 normalisation can be checked.
  inswapper_test.onnx  inswapper_128 signature: inputs "target" [1,3,128,128], "source" [1,512] -> "output"
                       [1,3,128,128] = 1 - target + 0.25 * source[0:3] (per channel): the face comes out with its
                       colours inverted, shifted by the latent's first three values. The graph's LAST
                       initializer is a 512x512 "emap" with emap[i, j] = ((7 i + 13 j) mod 17 - 8) / 8 (unused by
                       the graph, as in the real file), so a test can check the protobuf reader and the product.
  inswapper_noemap_test.onnx  the same graph without the emap (its last initializer is the 0.25 scalar, stored as
                       float_data rather than raw_data).
  scrfd_test.onnx      SCRFD (det_10g) signature: input "input.1" [1,3,H,W] -> 9 outputs score_8/16/32 [N,1],
                       bbox_8/16/32 [N,4], kps_8/16/32 [N,10], 2 anchors per cell. Score of a cell = the mean of
                       the normalised R plane over the cell ((x - 127.5) / 128), times 0.4 at strides 8 and 16 (so
                       only stride 32 passes a 0.5 threshold); box distances 2 (x stride) on every side; keypoint
                       offsets (x stride) (-0.5,-0.25) (0.5,-0.25) (0,0.25) (-0.4,0.9) (0.4,0.9). A white 32x32
                       square on one stride-32 cell of a black image is one face with a known box and keypoints.
  gfpgan_test.onnx     GFPGAN 1.4 signature: input "input" [1,3,512,512] in [-1,1] -> "output" = -input (the face
                       comes back with its colours inverted).

Needs apt's python3-onnx and python3-numpy.  Run from the repository root:
    /usr/bin/python3 scripts/make-insightface-test-models.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "testdata", "models")
OPSET = [helper.make_opsetid("", 13)]


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def save(graph, name, doc):
    m = helper.make_model(graph, opset_imports=OPSET)
    m.ir_version = 7
    m.producer_name = "blankend make-insightface-test-models.py"
    m.doc_string = doc
    onnx.checker.check_model(m)
    path = os.path.join(OUT, name)
    onnx.save(m, path)
    print(f"{path}: {os.path.getsize(path)} bytes")


def arcface():
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pool"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Pad", ["flat", "pads"], ["embedding"], mode="constant"),
    ]
    graph = helper.make_graph(nodes, "arcface_test", [f32("input.1", ["N", 3, 112, 112])], [f32("embedding", ["N", 512])],
                              initializer=[const("pads", [0, 0, 0, 512 - 147], np.int64)])
    save(graph, "arcface_test.onnx", "Test model with the ArcFace signature: 16x16 average pools of the input planes, zero-padded to 512.")


def emap():
    i = np.arange(512).reshape(512, 1)
    j = np.arange(512).reshape(1, 512)
    return (((7 * i + 13 * j) % 17 - 8) / 8.0).astype(np.float32)


def inswapper(with_emap):
    nodes = [
        helper.make_node("Sub", ["one", "target"], ["inverted"]),
        helper.make_node("Slice", ["source", "starts", "ends", "axes"], ["first3"]),
        helper.make_node("Reshape", ["first3", "shape"], ["shift"]),
        helper.make_node("Mul", ["shift", "quarter"], ["scaled"]),
        helper.make_node("Add", ["inverted", "scaled"], ["output"]),
    ]
    inits = [const("one", 1.0), const("starts", [0], np.int64), const("ends", [3], np.int64), const("axes", [1], np.int64),
             const("shape", [1, 3, 1, 1], np.int64),
             # float_data rather than raw_data: the reader's other FLOAT encoding.
             helper.make_tensor("quarter", TensorProto.FLOAT, [], [0.25])]
    if with_emap:
        inits.append(numpy_helper.from_array(emap(), "emap"))
    graph = helper.make_graph(nodes, "inswapper_test", [f32("target", [1, 3, 128, 128]), f32("source", [1, 512])],
                              [f32("output", [1, 3, 128, 128])], initializer=inits)
    name = "inswapper_test.onnx" if with_emap else "inswapper_noemap_test.onnx"
    save(graph, name, "Test model with the inswapper_128 signature: output = 1 - target + 0.25 * source[0:3]"
         + ("; last initializer: the 512x512 emap." if with_emap else "; no emap."))


def scrfd():
    kps = [-0.5, -0.25, 0.5, -0.25, 0.0, 0.25, -0.4, 0.9, 0.4, 0.9]
    nodes = [helper.make_node("Slice", ["input.1", "c0", "c1", "c_axis"], ["red"])]
    inits = [const("c0", [0], np.int64), const("c1", [1], np.int64), const("c_axis", [1], np.int64),
             const("zero", 0.0), const("bdist", [2.0, 2.0, 2.0, 2.0]), const("kdist", kps),
             const("flat1", [-1, 1], np.int64), const("flat4", [-1, 4], np.int64), const("flat10", [-1, 10], np.int64)]
    outs = {"score": [], "bbox": [], "kps": []}
    for s in (8, 16, 32):
        inits.append(const(f"f{s}", 1.0 if s == 32 else 0.4))
        nodes += [
            helper.make_node("AveragePool", ["red"], [f"p{s}"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("Transpose", [f"p{s}"], [f"t{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Mul", [f"t{s}", f"f{s}"], [f"s{s}"]),
            helper.make_node("Concat", [f"s{s}", f"s{s}"], [f"s2_{s}"], axis=3),
            helper.make_node("Reshape", [f"s2_{s}", "flat1"], [f"score_{s}"]),
            helper.make_node("Mul", [f"t{s}", "zero"], [f"z{s}"]),
            helper.make_node("Add", [f"z{s}", "bdist"], [f"b{s}"]),
            helper.make_node("Concat", [f"b{s}", f"b{s}"], [f"b2_{s}"], axis=3),
            helper.make_node("Reshape", [f"b2_{s}", "flat4"], [f"bbox_{s}"]),
            helper.make_node("Add", [f"z{s}", "kdist"], [f"k{s}"]),
            helper.make_node("Concat", [f"k{s}", f"k{s}"], [f"k2_{s}"], axis=3),
            helper.make_node("Reshape", [f"k2_{s}", "flat10"], [f"kps_{s}"]),
        ]
        outs["score"].append(f32(f"score_{s}", [f"n{s}", 1]))
        outs["bbox"].append(f32(f"bbox_{s}", [f"n{s}", 4]))
        outs["kps"].append(f32(f"kps_{s}", [f"n{s}", 10]))
    graph = helper.make_graph(nodes, "scrfd_test", [f32("input.1", [1, 3, "height", "width"])],
                              outs["score"] + outs["bbox"] + outs["kps"], initializer=inits)
    save(graph, "scrfd_test.onnx", "Test model with the SCRFD (det_10g) signature: scores = pooled normalised R, constant distances.")


def gfpgan():
    nodes = [helper.make_node("Neg", ["input"], ["output"])]
    graph = helper.make_graph(nodes, "gfpgan_test", [f32("input", [1, 3, 512, 512])], [f32("output", [1, 3, 512, 512])])
    save(graph, "gfpgan_test.onnx", "Test model with the GFPGAN 1.4 signature: output = -input (colours inverted in [-1, 1]).")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    arcface()
    inswapper(True)
    inswapper(False)
    scrfd()
    gfpgan()
