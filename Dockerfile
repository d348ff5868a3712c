# The service image: API and workers. The exported models travel inside the installed package.
#   docker build -t restore .                  (CPU, onnxruntime)
#   docker build -t restore-gpu --build-arg GPU=1 --build-arg BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 .
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG GPU=0
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*; \
    fi && python3 -m venv /opt/restore
ENV PATH=/opt/restore/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE NOTICE constraints.txt ./
COPY restore restore
COPY workers workers
COPY api api
COPY models/manifest.json models/*.onnx models/*.md models/
# onnxruntime-gpu replaces onnxruntime on GPU images. Both wheels write the same `onnxruntime` module,
# so the CPU one goes first and the GPU one is force-reinstalled over whatever it left.
RUN pip install -c constraints.txt ".[service]" && if [ "$GPU" = "1" ]; then pip uninstall -y onnxruntime && pip install --force-reinstall "onnxruntime-gpu>=1.17"; fi \
    && cd / && restore models && rm -rf /src
WORKDIR /
RUN useradd --system --uid 10001 restore
USER restore
EXPOSE 8000
CMD ["restore", "serve", "--host", "0.0.0.0", "--port", "8000"]
