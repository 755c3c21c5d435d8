# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The deployment files (issue 13), included from the Makefile.
# `make deploy-test` checks deploy/ without docker: the manifest against the
# Kubernetes API schema, the Dockerfile's runtime packages against ldd, and the
# agent run from the Dockerfile's image (interpreted by agent_image.py on the
# cached stage bases tools/rootfs builds) in a runc container generated from
# deploy/kubernetes/daemonset.yaml.  `make image` builds the real image where
# docker (with BuildKit, for Dockerfile.dockerignore) is installed.

IMAGE ?= profilis-bpf:0.2

.PHONY: deploy-rootfs deploy-test image

deploy-rootfs:
	$(call msg,ROOTFS,agent agent-build)
	$(Q)PROFILIS_ROOTFS_CACHE=$(ROOTFS_CACHE) tools/rootfs agent agent-build >/dev/null

deploy-test: profilis-bpf deploy-rootfs
	$(Q)PROFILIS_ROOTFS_CACHE=$(ROOTFS_CACHE) $(PYTHON) tests/integration/run.py test_deploy

image:
	$(Q)command -v docker >/dev/null 2>&1 || { echo "make image: docker is not installed;" \
		"make deploy-test builds the same root file system without it" >&2; exit 1; }
	DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile -t $(IMAGE) .
