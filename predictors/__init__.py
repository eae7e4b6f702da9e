"""CLIP image and text predictors: KServe custom models on open_clip (Open Inference Protocol v2).

    python -m predictors.image --model_dir DIR    # clip-image, HTTP :8001, gRPC :9001
    python -m predictors.text  --model_dir DIR    # clip-text,  HTTP :8002, gRPC :9002
    python -m predictors.text  --arch ViT-B-32 --pretrained laion2b_s34b_b79k   # or a checkpoint, or none

Flags (env; default): --model_dir (CLIP_MODEL_DIR; /mnt/models if present), --arch (CLIP_ARCH),
--pretrained (CLIP_PRETRAINED), --device auto|cpu|cuda (CLIP_DEVICE; auto = cuda when usable; cuda
where CUDA is not usable exits at load naming the driver/CUDA mismatch), --precision
auto|fp32|fp16|bf16 (CLIP_PRECISION; auto = fp16 on cuda, fp32 on cpu), --cpu_kernels onednn|torch
for fp32 linear layers on a CPU (CLIP_CPU_KERNELS; onednn), --num_threads torch threads
(CLIP_NUM_THREADS; image: one per CPU the process may use, its container's CPU limit included, or 1
where the model is too small to gain, timed at load; text: 1), --forward_workers passes at once,
sharing the threads when they overlap (CLIP_FORWARD_WORKERS; image: 2 on a CPU, 1 on a GPU; text: 1),
--max_batch_size (CLIP_MAX_BATCH_SIZE; 32), --max_batch_delay_ms (CLIP_MAX_BATCH_DELAY_MS; 0), --max_items
per request (CLIP_MAX_ITEMS; 64), --max_image_pixels (CLIP_MAX_IMAGE_PIXELS; 40 000 000), --max_text_chars
(CLIP_MAX_TEXT_CHARS; 2000), --max_queue_items items held at once, past it 503 + Retry-After / gRPC
UNAVAILABLE at once (CLIP_MAX_QUEUE_ITEMS; 256), --shutdown_grace_s for REST, then gRPC, to drain on
SIGTERM (CLIP_SHUTDOWN_GRACE_S; 10), --stall_timeout_s after which wedged forward passes make
/v2/health/live answer 503 (CLIP_STALL_TIMEOUT_S; 120), plus KServe's own
(--http_port, --grpc_port, --model_name, --enable_latency_logging, --log_config_file, ...).
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
