# rollback-bot container image. Built by .ci/build-image, which makes both base images from
# Debian bookworm's packages with mmdebstrap (nothing is pulled from an image registry):
#   RUNTIME  python3 (3.11) and ca-certificates on Debian's Essential set: no apt, no compiler
#   BUILDER  the same plus python3-venv (pip), used only to install the project
# Any Debian bookworm image with those packages works too:
#   podman build --build-arg RUNTIME=... --build-arg BUILDER=... .
ARG RUNTIME=localhost/rollback-bot-runtime:bookworm
ARG BUILDER=localhost/rollback-bot-builder:bookworm

FROM ${BUILDER} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/rollback-bot
# Dependencies first (a layer that only changes with pyproject.toml), then the project.
COPY pyproject.toml /src/
# The optional build secret ca-bundle is a CA bundle for reaching PyPI (a TLS-inspecting
# proxy's, say); it is mounted for the step only and is not part of any layer.
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && mkdir -p /src/src/rollback_bot && touch /src/README.md \
    && printf '__version__ = "0"\n' >/src/src/rollback_bot/__init__.py \
    && /opt/rollback-bot/bin/pip install --quiet '/src[postgres]' \
    && /opt/rollback-bot/bin/pip uninstall --quiet -y rollback-bot
COPY README.md /src/
COPY src /src/src
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && /opt/rollback-bot/bin/pip install --quiet --no-deps '/src' \
    # pip and setuptools are for installing; the running bot needs neither.
    && /opt/rollback-bot/bin/pip uninstall --quiet -y pip setuptools \
    # The official client ships an asyncio twin of itself (kubernetes/aio, about 70 MB);
    # the bot uses the synchronous client only (the final stage imports it to prove it).
    && rm -rf /opt/rollback-bot/lib/python3.*/site-packages/kubernetes/aio \
    # Byte-code compiled once here (the root file system is read-only in the pod); hash-based
    # so the files do not depend on the build's clock.
    && /opt/rollback-bot/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /opt/rollback-bot/lib

FROM ${RUNTIME}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="rollback-bot" \
      org.opencontainers.image.description="Slack chat-ops bot that coordinates Kubernetes rollbacks" \
      org.opencontainers.image.version="${VERSION}"
# A fixed non-root uid/gid (the chart's securityContext names the same numbers). Debian's
# Essential set has no useradd: the entries are written directly.
RUN echo 'rollback-bot:x:10001:10001:rollback-bot:/data:/usr/sbin/nologin' >>/etc/passwd \
    && echo 'rollback-bot:x:10001:' >>/etc/group \
    && mkdir -p /data /etc/rollback-bot \
    && chown 10001:10001 /data
COPY --from=build /opt/rollback-bot /opt/rollback-bot
COPY --chown=0:0 src/rollback_bot/sample_catalog.yaml /etc/rollback-bot/catalog.yaml
ENV PATH=/opt/rollback-bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROLLBACK_BOT_CATALOG=/etc/rollback-bot/catalog.yaml \
    DATABASE_URL=sqlite:////data/rollback-bot.db \
    PORT=3000
USER 10001:10001
WORKDIR /data
# Smoke tests at build time (the image is not built if they fail): the entry point runs, the
# sample catalog validates, and no build tool reached this stage.
RUN rollback-bot --version \
    && rollback-bot check-config /etc/rollback-bot/catalog.yaml \
    && python3 -c 'import rollback_bot.app, rollback_bot.cli, kubernetes.client, kubernetes.watch' \
    && ! python3 -m pip --version 2>/dev/null \
    && for tool in pip pip3 apt-get dpkg-buildpackage gcc cc make; do \
        if command -v "$tool"; then echo "build tool in the image: $tool" >&2; exit 1; fi; \
    done
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["rollback-bot"]
CMD ["serve"]
