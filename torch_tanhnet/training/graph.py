"""The handout's computational graph (its missing Figure 1), as a GraphDef for TensorBoard's Graphs tab.

The graph is written node by node with TensorBoard's own protos (GraphDef, NodeDef) rather
than traced from a module (``SummaryWriter.add_graph`` traces with torch.jit.trace, which
nests every node in the module's scope and names them after Python objects). So the tab
opens on the handout's graph itself, every node at the top level under the handout's name::

    X ──┐                      y ──┐
    U ──┼─> G ──> H ──┐            │
    b ──┘             ├─> z ──┬────┴─> cost
               W ─────┤       └──> o
               c ─────┘

Each edge carries its tensor's shape (N × 2, H × 2, …, with N shown as ?), and each node's
info card holds its equation from the handout (attribute ``equation``).
"""

from __future__ import annotations

from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.versions_pb2 import VersionDef

from ..module import TanhNet

N = -1  # the batch: any number of samples (TensorBoard draws -1 as ?)


def _node(name: str, op: str, inputs: list[str], shape: tuple[int, ...], equation: str) -> NodeDef:
    dims = [TensorShapeProto.Dim(size=d) for d in shape]
    return NodeDef(name=name, op=op, input=inputs, attr={
        "_output_shapes": AttrValue(list=AttrValue.ListValue(shape=[TensorShapeProto(dim=dims)])),
        "equation": AttrValue(s=equation.encode()),
    })


def seed_graph(net: TanhNet) -> GraphDef:
    """The handout's graph for ``net``'s sizes: inputs X, y; parameters U, b, W, c; G, H, z, o, cost."""
    hidden, inputs = net.U.shape
    handout = (hidden, inputs) == (3, 2)  # the handout's sums written out; the Σ form for other sizes
    g = "g_ij = u_j1 x_i1 + u_j2 x_i2 + b_j" if handout else f"g_ij = sum_k u_jk x_ik + b_j (k = 1..{inputs})"
    z = "z_i = w_1 h_i1 + w_2 h_i2 + w_3 h_i3 + c" if handout else f"z_i = sum_j w_j h_ij + c (j = 1..{hidden})"
    return GraphDef(versions=VersionDef(producer=22), node=[
        _node("X", "Input", [], (N, inputs), "X: the data points, one row x_i per sample"),
        _node("y", "Input", [], (N, 1), "y: the labels, 0 or 1"),
        _node("U", "Parameter", [], (hidden, inputs), "U: u_jk, the weight of input k into hidden unit j"),
        _node("b", "Parameter", [], (hidden,), "b: b_j, the bias of hidden unit j"),
        _node("W", "Parameter", [], (1, hidden), "W: w_j, the weight of hidden unit j into z"),
        _node("c", "Parameter", [], (1,), "c: the output's bias"),
        _node("G", "Affine", ["X", "U", "b"], (N, hidden), f"G = X U^T + b;  {g}"),
        _node("H", "Tanh", ["G"], (N, hidden), "H = tanh(G);  h_ij = tanh(g_ij)"),
        _node("z", "Affine", ["H", "W", "c"], (N, 1), f"z = H W^T + c;  {z}"),
        _node("o", "Sigmoid", ["z"], (N, 1), "o = sigma(z);  o_i = 1 / (1 + exp(-z_i))"),
        _node("cost", "MeanBCE", ["z", "y"], (), "cost: the handout's epsilon = (1/N) sum_i L(z_i, y_i),  "
              "L(z, y) = y log(1 + exp(-z)) + (1 - y) log(1 + exp(z)) = softplus(z) - y z"),
    ])
