"""Run the whole system locally: image predictor, text predictor and gateway as three processes.

`make run` calls this. Logs of the three are prefixed by name in one terminal; Ctrl-C (or SIGTERM)
stops all three cleanly. Which model is served, unless chosen with --model-dir or --arch/--pretrained:
real CLIP (ViT-B-32, laion2b_s34b_b79k) when its weights are cached or can be downloaded, otherwise the
demo model trained by this project, with a warning that says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.procs import Program, is_port_free, stop_all  # noqa: E402

DEMO_MODEL_DIR = ROOT / "models" / "clip-shapes"
REAL_ARCH, REAL_PRETRAINED = "ViT-B-32", "laion2b_s34b_b79k"
REAL_HF_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
REAL_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
HUB_PROBE_TIMEOUT_S = 3.0
COLOURS = {"image": "\033[35m", "text": "\033[36m", "gateway": "\033[33m"}
RESET = "\033[0m"
STOP_GRACE_S = 15.0


def log(message: str) -> None:
    print(f"[run] {message}", flush=True)


def cached_real_weights() -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(REAL_HF_REPO, f), str) for f in REAL_WEIGHTS)


def hub_reachable() -> bool:
    """Whether the weights could be downloaded now: offline mode (HF_HUB_OFFLINE) is off and a TCP
    connection to the hub (HF_ENDPOINT) opens within a few seconds, the same probe as the predictors'."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def download_real_weights() -> bool:
    from huggingface_hub import hf_hub_download

    log(f"downloading {REAL_ARCH} {REAL_PRETRAINED} weights from the Hugging Face hub ({REAL_HF_REPO})")
    try:
        hf_hub_download(REAL_HF_REPO, REAL_WEIGHTS[0])
    except Exception as exc:  # any hub failure means: fall back to the demo model
        log(f"download failed: {exc.__class__.__name__}: {exc}")
        return False
    return True


def choose_model(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """Predictor flags and extra environment for the model to serve."""
    if args.model_dir:
        return ["--model_dir", str(Path(args.model_dir).resolve())], {}
    if args.arch or args.pretrained:
        flags = ["--arch", args.arch or REAL_ARCH, "--pretrained", args.pretrained or REAL_PRETRAINED]
        return flags, {}
    if cached_real_weights() or (hub_reachable() and download_real_weights()):
        log(f"serving real CLIP: {REAL_ARCH} {REAL_PRETRAINED}")
        return ["--arch", REAL_ARCH, "--pretrained", REAL_PRETRAINED], {"HF_HUB_OFFLINE": "1"}
    bar = "!" * 78
    print(
        f"\n{bar}\n"
        f"  No network and no cached weights for {REAL_ARCH} {REAL_PRETRAINED}:\n"
        f"  serving the DEMO model ({DEMO_MODEL_DIR.relative_to(ROOT)}), a small CLIP trained here on\n"
        f"  drawn coloured shapes. It knows captions like 'a photo of a red circle', nothing else.\n"
        f"  For real CLIP: go online once (`make run` downloads it), or\n"
        f"  `make run MODEL_DIR=/path/to/open_clip_model_dir` or `make run ARCH=... PRETRAINED=...`.\n"
        f"{bar}\n",
        flush=True,
    )
    return ["--model_dir", str(DEMO_MODEL_DIR)], {}


def pump(child: Program) -> None:
    """Copy a child's output to ours, each line prefixed with its name."""
    assert child.proc is not None and child.proc.stdout is not None
    colour = COLOURS.get(child.name, "") if sys.stdout.isatty() else ""
    prefix = f"{colour}{child.name:>7} |{RESET if colour else ''} "
    for raw in iter(child.proc.stdout.readline, b""):
        sys.stdout.write(prefix + raw.decode(errors="replace"))
        sys.stdout.flush()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="open_clip model directory to serve")
    p.add_argument("--arch", help="open_clip architecture, e.g. ViT-B-32")
    p.add_argument("--pretrained", help="open_clip pretrained tag or checkpoint file")
    p.add_argument("--gateway-port", type=int, default=int(os.environ.get("GATEWAY_PORT", 8000)))
    p.add_argument("--image-port", type=int, default=8001)
    p.add_argument("--text-port", type=int, default=8002)
    p.add_argument("--image-grpc-port", type=int, default=9001)
    p.add_argument("--text-grpc-port", type=int, default=9002)
    p.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for readiness")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    ports = [args.gateway_port, args.image_port, args.text_port, args.image_grpc_port, args.text_grpc_port]
    taken = [p for p in ports if not is_port_free(p)]
    if taken:
        log(
            f"port(s) {', '.join(map(str, taken))} already in use: stop what listens there "
            f"(e.g. `lsof -i :{taken[0]}`) or an earlier `make run`, then try again."
        )
        return 1
    model_flags, model_env = choose_model(args)
    py = sys.executable
    env = {
        **model_env,
        "GATEWAY_PORT": str(args.gateway_port),
        "IMAGE_PREDICTOR_URL": f"http://127.0.0.1:{args.image_port}",
        "TEXT_PREDICTOR_URL": f"http://127.0.0.1:{args.text_port}",
    }

    def predictor(kind: str, http: int, grpc: int) -> Program:
        ports = ["--http_port", str(http), "--grpc_port", str(grpc)]
        argv = [py, "-m", f"predictors.{kind}", *model_flags, *ports]
        return Program(kind, argv, f"http://127.0.0.1:{http}/v2/models/clip-{kind}/ready", env=env)

    children = [
        predictor("image", args.image_port, args.image_grpc_port),
        predictor("text", args.text_port, args.text_grpc_port),
        Program("gateway", [py, "-m", "gateway"], f"http://127.0.0.1:{args.gateway_port}/readyz", env=env),
    ]
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    for c in children:  # each leads its own session: the terminal's Ctrl-C reaches only us
        c.launch(output=subprocess.PIPE)
        threading.Thread(target=pump, args=(c,), daemon=True).start()
    announced, code = False, 0
    while not stopping.wait(0.25):
        dead = [c for c in children if not c.running()]
        if dead:
            log(
                f"{dead[0].name} exited with code {dead[0].proc.returncode if dead[0].proc else '?'}: "
                "stopping the others"
            )
            code = 1
            break
        if not announced and all(c.ready() for c in children):
            announced = True
            log(
                f"ready in {time.monotonic() - started:.1f}s: gateway http://localhost:{args.gateway_port} "
                f"(docs at /docs), predictors :{args.image_port} and :{args.text_port}. Try:"
            )
            print(
                f"  curl -s -F image=@samples/red-circle.png -F 'text=a photo of a red circle' "
                f"http://localhost:{args.gateway_port}/compare/\nCtrl-C stops all three.",
                flush=True,
            )
        elif not announced and time.monotonic() - started > args.ready_timeout:
            log(f"not ready after {args.ready_timeout:.0f}s: stopping")
            code = 1
            break
    log("stopping")
    stop_all(children, STOP_GRACE_S, on_late=lambda c: log(f"{c.name} did not stop in time: killing it"))
    log("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
