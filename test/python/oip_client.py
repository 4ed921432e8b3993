"""An Open Inference Protocol client in Python (Debian's grpcio), as a Triton user would write one.

Usage: oip_client.py STUBS_DIR ADDRESS. Prints one JSON object with what the server answered.
"""
import json
import struct
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from inference import grpc_service_pb2 as pb  # noqa: E402
from inference import grpc_service_pb2_grpc as rpc  # noqa: E402

channel = grpc.insecure_channel(sys.argv[2])
stub = rpc.GRPCInferenceServiceStub(channel)
out = {}

meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="affine"))
out["metadata"] = {"platform": meta.platform, "inputs": [[t.name, t.datatype, list(t.shape)] for t in meta.inputs]}

raw = pb.ModelInferRequest(model_name="affine", id="py-raw")
tensor = raw.inputs.add(name="x", datatype="FP32", shape=[1, 4])
raw.raw_input_contents.append(struct.pack("<4f", 1, 2, 3, 4))
reply = stub.ModelInfer(raw)
out["raw"] = {"id": reply.id, "outputs": [o.name for o in reply.outputs],
              "y": list(struct.unpack("<4f", reply.raw_output_contents[0]))}

typed = pb.ModelInferRequest(model_name="affine")
t = typed.inputs.add(name="x", datatype="FP32", shape=[1, 4])
t.contents.fp32_contents.extend([0, 1, 2, 3])
typed.outputs.add(name="z")
reply = stub.ModelInfer(typed)
out["typed"] = {"outputs": [o.name for o in reply.outputs], "z": list(struct.unpack("<4f", reply.raw_output_contents[0]))}


def stream_requests():
    for i in range(5):
        r = pb.ModelInferRequest(model_name="affine", id="s%d" % i)
        shape = [1, 3] if i == 2 else [1, 4]
        r.inputs.add(name="x", datatype="FP32", shape=shape)
        r.raw_input_contents.append(struct.pack("<%df" % shape[1], *([float(i)] * shape[1])))
        yield r


answers = {}
for a in stub.ModelStreamInfer(stream_requests()):
    answers[a.infer_response.id] = a.error_message
out["stream"] = answers

try:
    stub.ModelInfer(pb.ModelInferRequest(model_name="missing"))
except grpc.RpcError as error:
    out["missing"] = error.code().name

print(json.dumps(out))
