"""CLIP image and text predictors: KServe custom models on open_clip (Open Inference Protocol v2).

    python -m predictors.image --model_dir DIR    # clip-image, HTTP :8001, gRPC :9001
    python -m predictors.text  --model_dir DIR    # clip-text,  HTTP :8002, gRPC :9002
    python -m predictors.text  --arch ViT-B-32 --pretrained laion2b_s34b_b79k   # or a checkpoint, or none

Flags, their `CLIP_*` environment variables and defaults: `python -m predictors.image --help`, or
docs/configuration.md (generated from `predictors.settings`). KServe's own flags (--http_port,
--grpc_port, --model_name, --enable_latency_logging, --log_config_file, ...) work as usual.
`--workers` must stay 1 (batching lives in the process): scale with replicas.

Client forms (image shown; text is the same with input `text` and UTF-8 strings):

    # JSON: image elements are base64
    curl -s localhost:8001/v2/models/clip-image/infer -H 'content-type: application/json' \\
      -d '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["'"$(base64 -w0 cat.jpg)"'"]}]}'

    # tritonclient.http, binary tensor data extension for the input and the output
    import numpy as np, tritonclient.http as th
    x = th.InferInput("image", [1], "BYTES"); x.set_data_from_numpy(np.array([jpeg], dtype=object))
    r = th.InferenceServerClient("localhost:8001").infer(
        "clip-image", [x], outputs=[th.InferRequestedOutput("embedding", binary_data=True)])
    r.as_numpy("embedding"); r.get_response()["parameters"]["logit_scale"]

    # tritonclient.grpc
    import tritonclient.grpc as tg
    x = tg.InferInput("image", [1], "BYTES"); x.set_data_from_numpy(np.array([jpeg], dtype=object))
    tg.InferenceServerClient("localhost:9001").infer("clip-image", [x]).as_numpy("embedding")

    # kserve InferenceRESTClient / InferenceGRPCClient (async)
    from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest
    x = InferInput("image", [1], "BYTES"); x.set_data_from_numpy(np.array([jpeg], dtype=object))
    req = InferRequest(model_name="clip-image", infer_inputs=[x])
    res = await InferenceRESTClient(RESTConfig(protocol="v2")).infer("http://localhost:8001", req,
                                                                     model_name="clip-image")
    res = await InferenceGRPCClient("localhost:9001").infer(req)
    res.outputs[0].as_numpy()

Output `embedding` FP32 [N, D], L2-normalised. Each response carries `parameters` {arch, pretrained,
embed_dim, logit_scale} (see `predictors.model`); `GET /v2/models/{name}/config` has them too, with
device, precision and limits (see `predictors.server`). Bad input is a 400 `{"error": ...}` / gRPC
INVALID_ARGUMENT naming the problem. tritonclient.grpc and kserve cannot be imported into one process
(both register the `inference.*` protobuf messages).
"""
