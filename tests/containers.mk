# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The Debian root file systems the container and chroot integration tests run
# their interpreters from (issue 12): tools/rootfs builds sid (python3.14, 3.15,
# -dbg), bookworm (python3.11) and otlp (sid's OpenTelemetry protobuf definitions,
# for the OTLP receiver) once into $(ROOTFS_CACHE), outside the checkout,
# and reuses them afterwards. Included from the Makefile; `make deps` calls rootfs.
# `make rootfs-selftest` starts one server of every kind and checks the cleanup.

ROOTFS_CACHE ?= $(or $(PROFILIS_ROOTFS_CACHE),/var/cache/profilis-bpf/rootfs)

.PHONY: rootfs rootfs-selftest

rootfs:
	$(call msg,ROOTFS,$(ROOTFS_CACHE))
	$(Q)PROFILIS_ROOTFS_CACHE=$(ROOTFS_CACHE) tools/rootfs sid bookworm otlp >/dev/null

rootfs-selftest: rootfs
	$(Q)PROFILIS_ROOTFS_CACHE=$(ROOTFS_CACHE) $(PYTHON) tests/integration/containers.py --selftest
