# flowmetrics as a container image: `make image` (tag with IMAGE=...).
#
# The image holds only the static binary, built on the host by `make image`
# (CGO_ENABLED=0), as Prometheus's own images hold binaries built outside
# them: no base image to pull, no shell, no package manager, nothing to
# patch but flowmetrics itself. It runs as nobody (65534).
#
# Run it on the host's network so flows keep their exporter's address (a
# published UDP port behind Docker's proxy or NAT can arrive from the
# bridge's address instead, and every router would look like one):
#
#   docker run -d --name flowmetrics --network host \
#     -v /etc/flowmetrics:/etc/flowmetrics:ro \
#     flowmetrics:<version> --config.file=/etc/flowmetrics/flowmetrics.yml
#
# Without --config.file the defaults apply: flows on UDP 2055, 4739 and
# 6343, /metrics on TCP 9155.
#
# The OCI labels say which build an image holds without running it
# (docker inspect, registries, scanners); `make image` passes the same
# VERSION and REVISION as the binary's flowmetrics_build_info, and CREATED,
# the commit's date (RFC 3339), which is the binary's --version build date.
FROM scratch
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="flowmetrics" \
      org.opencontainers.image.description="NetFlow v5/v9, IPFIX and sFlow v5 as bounded-cardinality Prometheus metrics" \
      org.opencontainers.image.source="https://github.com/flowmetrics/flowmetrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY bin/image/flowmetrics /bin/flowmetrics
USER 65534:65534
EXPOSE 2055/udp 4739/udp 6343/udp 9155/tcp
ENTRYPOINT ["/bin/flowmetrics"]
