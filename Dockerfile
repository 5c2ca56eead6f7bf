# vaultrisk images, multi-stage. The base is a build argument: debian:bookworm-slim
# for users; offline, a local image made with debootstrap (scripts/compose-test).
#   docker build --target runtime -t vaultrisk .        the service and CLI
#   targets: build, runtime, nats (nats-server), anvil (a local chain), prometheus
# A CUDA variant for GPU hosts: Dockerfile.cuda.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates curl nodejs \
      nlohmann-json3-dev libboost-dev libsecp256k1-dev libcrypto++-dev libcurl4-openssl-dev libxxhash-dev \
      libnats-dev prometheus-cpp-dev libtomlplusplus-dev libsleef-dev libthrust-dev libcub-dev \
    && rm -rf /var/lib/apt/lists/*
# Extra CAs for an inspecting proxy, if any (deploy/compose/ca/README.md).
COPY deploy/compose/ca/ /tmp/extra-ca/
RUN for c in /tmp/extra-ca/*.crt; do [ -f "$c" ] && cat "$c" >> /etc/ssl/certs/ca-certificates.crt; done; rm -rf /tmp/extra-ca
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
# The pinned JS tools first (solc-js compiles the anchor contract; anvil is the chain):
# npm itself from the registry, pinned by checksum (Debian's npm package drags in
# hundreds of node-* packages); then the pinned tools of package-lock.json.
ARG NPM_VERSION=10.9.2
ARG NPM_SHA256=5cd1e5ab971ea6333f910bc2d50700167c5ef4e66da279b2a3efc874c6b116e4
RUN curl -fsSL -o /tmp/npm.tgz https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz \
    && echo "${NPM_SHA256}  /tmp/npm.tgz" | sha256sum -c - \
    && mkdir -p /opt/npm && tar -xzf /tmp/npm.tgz -C /opt/npm --strip-components=1 && rm /tmp/npm.tgz \
    && ln -s /opt/npm/bin/npm-cli.js /usr/local/bin/npm
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
    && cp "$(find node_modules/@foundry-rs -type f -name anvil -size +1M | head -1)" /usr/local/bin/anvil
COPY CMakeLists.txt ./
COPY cmake cmake
COPY pricing pricing
COPY kernels kernels
COPY core core
COPY io io
COPY chain chain
COPY contracts contracts
COPY feeds feeds
COPY service service
COPY cli cli
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DVR_BUILD_TESTS=OFF \
    && cmake --build build --target vaultrisk \
    && strip build/cli/vaultrisk

FROM ${BASE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libgomp1 libsecp256k1-1 libcrypto++8 libcurl4 libxxhash0 libnats3.4 \
      libprometheus-cpp-pull1.0 libprometheus-cpp-core1.0 libtomlplusplus3 libsleef3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/cli/vaultrisk /usr/local/bin/vaultrisk
RUN useradd --system --home /var/lib/vaultrisk --create-home vaultrisk
USER vaultrisk
WORKDIR /var/lib/vaultrisk
EXPOSE 9464
ENTRYPOINT ["vaultrisk"]
CMD ["--help"]

FROM ${BASE} AS nats
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends nats-server && rm -rf /var/lib/apt/lists/*
EXPOSE 4222 6222
ENTRYPOINT ["nats-server"]

FROM runtime AS anvil
COPY --from=build /usr/local/bin/anvil /usr/local/bin/anvil
EXPOSE 8545
ENTRYPOINT ["anvil"]
CMD ["--host", "0.0.0.0", "--port", "8545"]

FROM ${BASE} AS prometheus
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends prometheus && rm -rf /var/lib/apt/lists/*
EXPOSE 9090
ENTRYPOINT ["prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
