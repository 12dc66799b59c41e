#!/usr/bin/python3
"""Builds the tiny ONNX test models in tests/testdata/models/ (committed; the tests need no python).

  rvm_test.onnx    Robust Video Matting signature with a known, trivial computation:
                   inputs  src [1,3,H,W] (RGB 0..1), r1i..r4i (any shape, start as zeros [1,1,1,1]),
                           downsample_ratio [1]
                   outputs fgr = src, pha = mean of src over the 3 channels [1,1,H,W],
                           r1o = r1i + 1          (a frame counter: proves the states are fed back)
                           r2o = r2i + downsample_ratio (proves the ratio is passed)
                           r3o = r3i, r4o = r4i
  depth_test.onnx  MiDaS-small-style depth: input [1,3,256,256] (RGB, ImageNet-normalised),
                   output depth [1,256,256] = channel 0 (the normalised R), so a known input gives a
                   known (inverse) depth: red = near.
  depth_rg_test.onnx  The other MiDaS variants: dynamic input [1,3,H,W] (the service feeds 256x256), output
                   [1,1,H,W] = channel 0 + channel 1 (normalised R + normalised G): the result depends on the
                   per-channel ImageNet mean AND std, so a test can check the input normalisation.

Needs apt's python3-onnx and python3-numpy:  apt-get install -y python3-onnx python3-numpy
Run from the repository root:                /usr/bin/python3 scripts/make-test-models.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "testdata", "models")
OPSET = [helper.make_opsetid("", 13)]


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def save(model, name):
    model.producer_name = "blankend make-test-models.py"
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    print(f"{path}: {os.path.getsize(path)} bytes")


def rvm():
    one = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")
    nodes = [
        helper.make_node("Identity", ["src"], ["fgr"]),
        helper.make_node("ReduceMean", ["src"], ["pha"], axes=[1], keepdims=1),
        helper.make_node("Add", ["r1i", "one"], ["r1o"]),
        helper.make_node("Add", ["r2i", "downsample_ratio"], ["r2o"]),
        helper.make_node("Identity", ["r3i"], ["r3o"]),
        helper.make_node("Identity", ["r4i"], ["r4o"]),
    ]
    state = lambda n, i: f32(n, [1, f"c{i}", f"h{i}", f"w{i}"])
    graph = helper.make_graph(
        nodes, "rvm_test",
        [f32("src", [1, 3, "height", "width"]), state("r1i", 1), state("r2i", 2), state("r3i", 3), state("r4i", 4),
         f32("downsample_ratio", [1])],
        [f32("fgr", [1, 3, "height", "width"]), f32("pha", [1, 1, "height", "width"]),
         state("r1o", 1), state("r2o", 2), state("r3o", 3), state("r4o", 4)],
        initializer=[one])
    m = helper.make_model(graph, opset_imports=OPSET)
    m.ir_version = 7
    m.doc_string = "Test model with the Robust Video Matting signature: pha = mean(src over C), r1o = r1i + 1, r2o = r2i + downsample_ratio."
    save(m, "rvm_test.onnx")


def depth():
    idx = numpy_helper.from_array(np.array(0, dtype=np.int64), "r_index")
    nodes = [helper.make_node("Gather", ["input", "r_index"], ["depth"], axis=1)]
    graph = helper.make_graph(nodes, "depth_test", [f32("input", [1, 3, 256, 256])], [f32("depth", [1, 256, 256])],
                              initializer=[idx])
    m = helper.make_model(graph, opset_imports=OPSET)
    m.ir_version = 7
    m.doc_string = "Test model with the MiDaS small signature: depth = input channel 0 (normalised R)."
    save(m, "depth_test.onnx")


def depth_rg():
    i0 = numpy_helper.from_array(np.array([0], dtype=np.int64), "i0")
    i1 = numpy_helper.from_array(np.array([1], dtype=np.int64), "i1")
    nodes = [
        helper.make_node("Gather", ["input", "i0"], ["r"], axis=1),
        helper.make_node("Gather", ["input", "i1"], ["g"], axis=1),
        helper.make_node("Add", ["r", "g"], ["depth"]),
    ]
    graph = helper.make_graph(nodes, "depth_rg_test", [f32("input", [1, 3, "height", "width"])],
                              [f32("depth", [1, 1, "height", "width"])], initializer=[i0, i1])
    m = helper.make_model(graph, opset_imports=OPSET)
    m.ir_version = 7
    m.doc_string = "Test model, MiDaS-style with dynamic H/W and a [1,1,H,W] output: depth = input channel 0 + channel 1."
    save(m, "depth_rg_test.onnx")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    rvm()
    depth()
    depth_rg()
