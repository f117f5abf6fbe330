# DIGITS in a container: docker build -t digits . && docker run -p 5000:5000 -v $PWD/jobs:/jobs digits
# For GPUs, run with --gpus all (NVIDIA Container Toolkit); TensorFlow finds CUDA from its pip wheels.
FROM python:3.11-slim

WORKDIR /opt/digits
# Dependencies first: a source change does not reinstall TensorFlow.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps . && useradd --create-home digits && mkdir /jobs && chown digits /jobs

USER digits
ENV DIGITS_JOBS_DIR=/jobs
VOLUME /jobs
EXPOSE 5000
CMD ["digits-server", "--host", "0.0.0.0", "--port", "5000"]
