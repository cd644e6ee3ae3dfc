# Dockerfile - oci-registry, the FastCGI responder, on Debian 12 slim.
#
#     docker build -t oci-registry .
#
# BASE_IMAGE names the Debian 12 image both stages start from (the tests,
# with no registry to pull from, pass one imported from debootstrap).
#
# The image runs only the responder, as an unprivileged user, listening on
# /run/oci-registry/fcgi.sock with its cache in /var/cache/oci-registry;
# nginx runs next to it (see contrib/docker-compose/ and contrib/helm/).
# Every option is an environment variable (oci-registry(8)); the command is
# the storage subcommand.

ARG BASE_IMAGE=debian:12-slim

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      autoconf automake libtool pkg-config make gcc libc6-dev \
      libfcgi-dev libcurl4-openssl-dev libssl-dev libyaml-dev libcjson-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN autoreconf -fi \
 && ./configure --prefix=/usr --sysconfdir=/etc \
 && make -j"$(nproc)" \
 && make install-strip DESTDIR=/out

# libfcgi-bin: cgi-fcgi, the Helm chart's liveness probe of the responder.
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfcgi0ldbl libcurl4 libssl3 libyaml-0-2 libcjson1 ca-certificates libfcgi-bin \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 oci-registry \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/cache/oci-registry \
      --no-create-home --shell /usr/sbin/nologin oci-registry \
 && install -d -o 10001 -g 10001 -m 0755 /var/cache/oci-registry /run/oci-registry
COPY --from=build /out/usr/bin/oci-registry /usr/bin/oci-registry
COPY example.yaml /etc/oci-registry/upstream.yaml
ENV LISTEN=unix:/run/oci-registry/fcgi.sock \
    FILESYSTEM_ROOT=/var/cache/oci-registry \
    UPSTREAM_CONFIG_FILE=/etc/oci-registry/upstream.yaml
USER 10001:10001
VOLUME ["/var/cache/oci-registry", "/run/oci-registry"]
ENTRYPOINT ["/usr/bin/oci-registry"]
CMD ["filesystem"]
