"""Rewrites of the ONNX graph tf2onnx makes of our model, into the forms that ONNX Runtime,
OpenVINO and NNCF recognise and fuse.

Written here because no converter does it: tf2onnx spells a Keras layer norm as eleven
elementwise ops and keras-hub's attention as a transposed product with its mask applied
before and after the softmax, and neither runtime matches those patterns. OpenVINO then
runs each layer norm op by op and the attention as separate products; rewritten, it runs
one MVN per layer norm and one fused attention per layer (docs/exports.md: OpenVINO int8
from 193 to 203-236 sentences/s end to end on AMD EPYC). Every rewrite matches its whole
pattern or leaves the graph as it was.
"""

import numpy as np


class Graph:
    """An ONNX graph's nodes by the tensors they make and read."""

    def __init__(self, model):
        self.model, self.graph = model, model.graph
        self.weights = {i.name: i for i in self.graph.initializer}
        self.producer = {out: node for node in self.graph.node for out in node.output}
        self.consumers = {}
        for node in self.graph.node:
            for name in dict.fromkeys(node.input):  # a node reading a tensor twice: once
                self.consumers.setdefault(name, []).append(node)

    def made_by(self, name, op_type):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_user(self, node, op_type):
        """The one node that reads `node`'s output, if it is an `op_type`, else None."""
        users = self.consumers.get(node.output[0], [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def users(self, node, op_type):
        return [n for n in self.consumers.get(node.output[0], []) if n.op_type == op_type]

    def chain(self, node, *op_types):
        """[node, its only user, that one's only user, ...] of the given op types, or None
        where one is missing or another op reads a link."""
        nodes = [node]
        for op_type in op_types:
            nodes.append(self.only_user(nodes[-1], op_type))
            if nodes[-1] is None:
                return None
        return nodes

    def constant(self, name):
        from onnx import numpy_helper

        if name in self.weights:
            return numpy_helper.to_array(self.weights[name])
        node = self.made_by(name, "Constant")
        return None if node is None else numpy_helper.to_array(node.attribute[0].t)

    def other_input(self, node, known):
        return next((i for i in node.input if i != known), None)

    def replace(self, drop, new=None):
        """The nodes without those in `drop` (ids); `new` ({id of a dropped node: node})
        takes a dropped node's place, keeping the order topological."""
        new = new or {}
        nodes = [new.get(id(n), n) for n in self.graph.node if id(n) not in drop or id(n) in new]
        del self.graph.node[:]
        self.graph.node.extend(nodes)


def perm(node):
    return next(list(a.ints) for a in node.attribute if a.name == "perm")


def set_perm(node, values):
    attribute = next(a for a in node.attribute if a.name == "perm")
    del attribute.ints[:]
    attribute.ints.extend(values)


def fuse_layer_norms(model):
    """(model at opset 17, count): each layer norm tf2onnx decomposed, y = x * g' +
    (-mean * g' + beta) with g' = gamma / sqrt(var + eps), mean and var two
    GlobalAveragePools (over the last axis of BERT's (batch, tokens, hidden) tensors), as
    one `LayerNormalization` over the last axis (opset 17)."""
    from onnx import helper, numpy_helper, version_converter

    model = version_converter.convert_version(model, 17)
    g, drop, new = Graph(model), set(), {}
    for mean in [n for n in g.graph.node if n.op_type == "GlobalAveragePool"]:
        x, found = mean.input[0], layer_norm_nodes(g, mean)
        if found is None:
            continue
        nodes, eps, gamma, beta = found
        name = mean.name + "/layer_norm"
        g.graph.initializer.extend([
            numpy_helper.from_array(gamma.reshape(-1).astype(np.float32), name + "/gamma"),
            numpy_helper.from_array(beta.reshape(-1).astype(np.float32), name + "/beta"),
        ])  # fmt: skip
        out, inputs = nodes[-1], [x, name + "/gamma", name + "/beta"]
        new[id(out)] = helper.make_node("LayerNormalization", inputs, list(out.output),
                                        name=name, axis=-1, epsilon=eps)  # fmt: skip
        drop.update(id(n) for n in nodes)
    g.replace(drop, new)
    read = {name for node in g.graph.node for name in node.input}
    unread = [i for i in g.graph.initializer if i.name not in read]  # the old gamma and beta
    for weight in unread:
        g.graph.initializer.remove(weight)
    return model, len(new)


def layer_norm_nodes(g, mean):
    """(nodes from `mean` to the output, eps, gamma, beta) of the layer norm whose mean
    is `mean`, or None where the pattern differs."""
    x = mean.input[0]
    sub = next((n for n in g.users(mean, "Sub") if list(n.input) == [x, mean.output[0]]), None)
    neg = g.users(mean, "Neg")
    if sub is None or len(neg) != 1:
        return None
    chain = g.chain(sub, "Mul", "GlobalAveragePool", "Add", "Sqrt", "Reciprocal", "Mul")
    if chain is None or chain[1].input[0] != chain[1].input[1]:
        return None
    _, square, variance, plus_eps, root, inverse, scaled = chain
    users = g.consumers.get(scaled.output[0], [])
    times_x = [n for n in users if n.op_type == "Mul" and x in n.input]
    times_mean = [n for n in users if n.op_type == "Mul" and neg[0].output[0] in n.input]
    if len(users) != 2 or len(times_x) != 1 or len(times_mean) != 1:
        return None
    tail = g.chain(times_mean[0], "Add", "Add")
    if tail is None or times_x[0].output[0] not in tail[2].input:
        return None
    eps = g.constant(g.other_input(plus_eps, variance.output[0]))
    gamma = g.constant(g.other_input(scaled, inverse.output[0]))
    beta = g.constant(g.other_input(tail[1], times_mean[0].output[0]))
    if eps is None or eps.size != 1 or gamma is None or beta is None:
        return None
    nodes = [mean, neg[0], *chain, times_x[0], *tail]
    return nodes, float(eps.reshape(-1)[0]), gamma, beta


def plain_attention(model):
    """(model, count): keras-hub's attention as runtimes fuse it, softmax(Q K^T + mask) V.

    tf2onnx writes the scores as (K Q^T) transposed, the mask as `m * s + (1 - m) * -1e9`
    before the softmax and `m * p` after it. Here: Q K^T directly, the mask added (masked
    scores become s - 1e9 instead of -1e9), and no mask after the softmax. Both give a
    masked key a probability of exactly 0 in float32, and no row is wholly masked (the
    mask marks keys only), so the outputs agree to rounding.
    """
    g, drop = Graph(model), set()
    count = 0
    for softmax in [n for n in g.graph.node if n.op_type == "Softmax"]:
        found = attention_nodes(g, softmax)
        if found is None:
            continue
        plus_mask, times_mask, flip, product, keys, queries, after, plus_after, values = found
        set_perm(keys, [0, 2, 3, 1])  # (batch, heads, depth, keys)
        set_perm(queries, [0, 2, 1, 3])  # (batch, heads, queries, depth)
        product.input[0], product.input[1] = queries.output[0], keys.output[0]
        for i, name in enumerate(plus_mask.input):
            if name == times_mask.output[0]:
                plus_mask.input[i] = product.output[0]
        for i, name in enumerate(values.input):
            if name == plus_after.output[0]:
                values.input[i] = softmax.output[0]
        drop.update(id(n) for n in (times_mask, flip, after, plus_after))
        count += 1
    g.replace(drop)
    return model, count


def attention_nodes(g, softmax):
    """The nodes of one attention around `softmax` in tf2onnx's form, or None."""
    plus_mask = g.made_by(softmax.input[0], "Add")
    if plus_mask is None:
        return None
    times_mask = next((g.producer[i] for i in plus_mask.input if g.made_by(i, "Mul")), None)
    if times_mask is None:
        return None
    flip = next((g.producer[i] for i in times_mask.input if g.made_by(i, "Transpose")), None)
    if flip is None or perm(flip) != [0, 1, 3, 2] or g.only_user(flip, "Mul") is None:
        return None
    product = g.made_by(flip.input[0], "MatMul")
    if product is None:
        return None
    keys, queries = (g.made_by(i, "Transpose") for i in product.input)
    if keys is None or queries is None:
        return None
    if perm(keys) != [0, 2, 1, 3] or perm(queries) != [0, 2, 3, 1]:
        return None
    after = g.chain(softmax, "Mul", "Add", "MatMul")
    if after is None:
        return None
    if any(len(g.consumers.get(n.output[0], [])) != 1 for n in (keys, queries, product)):
        return None
    return plus_mask, times_mask, flip, product, keys, queries, *after[1:]


def gemm_as_matmul(model):
    """`model` (ONNX) with each Gemm by a constant matrix and no bias (tf2onnx's form of
    the attention projections) written as a MatMul, which ONNX Runtime's dynamic
    quantization quantizes (it leaves Gemm in float32). On 600 real sentences this took
    int8 from 1.19x to 1.39x the float32 ONNX speed, cosine to float32 0.9975 / 0.988."""
    from onnx import helper, numpy_helper

    weights = {i.name: i for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (node.op_type == "Gemm" and node.input[1] in weights
                 and attrs.get("alpha", 1.0) == 1.0 and not attrs.get("transA", 0)
                 and (len(node.input) < 3 or attrs.get("beta", 1.0) == 0.0))  # fmt: skip
        if not plain:
            nodes.append(node)
            continue
        matrix = node.input[1]
        if attrs.get("transB", 0):
            transposed = numpy_helper.to_array(weights[matrix]).T.copy()
            model.graph.initializer.append(numpy_helper.from_array(transposed, matrix + "_t"))
            matrix += "_t"
        nodes.append(helper.make_node("MatMul", [node.input[0], matrix], list(node.output),
                                      name=node.name + "_matmul"))  # fmt: skip
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model
