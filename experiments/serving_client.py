"""Talk to TF Serving: the REST bodies and the gRPC request for the exported signature.

    python -m experiments.serving_client "A sentence." "Another one."          # print requests
    python -m experiments.serving_client --rest localhost:8501 "A sentence."   # send (REST)
    python -m experiments.serving_client --grpc localhost:8500 "A sentence."   # send (gRPC)

Start the server with the official image (see docs/exports.md, "TF Serving"); `--model-name` must
match its MODEL_NAME (default `mtl`).
"""

import json
import urllib.request

from experiments.cli import ArgumentParser, run_main
from mtl_keras.encoding.inputs import as_sentence_list
from mtl_keras.export.serving import SIGNATURE


def rest_row_body(sentences):
    """Row format: one instance per sentence (the signature has the single input `text`)."""
    return {"signature_name": SIGNATURE, "instances": as_sentence_list(sentences)}


def rest_columnar_body(sentences):
    """Columnar format: named inputs, each a batch."""
    return {"signature_name": SIGNATURE, "inputs": {"text": as_sentence_list(sentences)}}


def grpc_request(sentences, model_name="mtl"):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the signature."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = SIGNATURE
    request.inputs["text"].CopyFrom(
        tf.make_tensor_proto(as_sentence_list(sentences), dtype=tf.string)
    )
    return request


def send_rest(host, model_name, body, timeout=30):
    url = f"http://{host}/v1/models/{model_name}:predict"
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def send_grpc(host, request, timeout=30):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(host) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout)


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentences", nargs="+")
    parser.add_argument("--model-name", default="mtl")
    parser.add_argument("--rest", metavar="HOST:PORT", help="send to TF Serving's REST API")
    parser.add_argument("--grpc", metavar="HOST:PORT", help="send to TF Serving's gRPC API")
    args = parser.parse_args(argv)
    if args.rest:
        print(json.dumps(send_rest(args.rest, args.model_name, rest_columnar_body(args.sentences))))
    elif args.grpc:
        print(send_grpc(args.grpc, grpc_request(args.sentences, args.model_name)))
    else:
        url = f"http://localhost:8501/v1/models/{args.model_name}:predict"
        body = json.dumps(rest_row_body(args.sentences))
        print(f"curl -X POST {url} -d '{body}'")
        print(f"curl -X POST {url} -d '{json.dumps(rest_columnar_body(args.sentences))}'")
        print(grpc_request(args.sentences, args.model_name))


if __name__ == "__main__":
    run_main(main)
