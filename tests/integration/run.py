#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Runs the integration tests (as root, against real interpreters, servers
and the real BPF programs).  `run.py [substring ...]` runs matching tests."""
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import test_errors  # noqa: E402
import test_fields  # noqa: E402
import test_http  # noqa: E402
import test_live  # noqa: E402
import test_loader  # noqa: E402
import test_otlp  # noqa: E402
import test_targets  # noqa: E402
import test_containers  # noqa: E402
import test_all  # noqa: E402
import test_caches  # noqa: E402
import test_deploy  # noqa: E402
import test_k8smeta  # noqa: E402
import test_learned  # noqa: E402
import test_pipeline  # noqa: E402
import test_profile  # noqa: E402
import test_requests  # noqa: E402
import test_servers  # noqa: E402
import test_trust  # noqa: E402
import test_versions  # noqa: E402

MODULES = [test_requests, test_fields, test_learned, test_servers, test_versions, test_errors,
           test_pipeline,
           test_live, test_profile, test_trust, test_loader, test_targets,
           test_containers, test_k8smeta, test_all, test_deploy, test_otlp, test_http,
           test_caches]


def main():
    if os.geteuid() != 0:
        sys.exit("integration tests attach BPF programs: run them as root")
    if not os.access(harness.BINARY, os.X_OK):
        sys.exit("build ./profilis-bpf first (make)")
    wanted = sys.argv[1:]
    failed = []
    ran = 0
    t_all = time.time()
    for mod in MODULES:
        for test in mod.TESTS:
            name = "%s.%s" % (mod.__name__, test.__name__)
            if wanted and not any(w in name for w in wanted):
                continue
            t0 = time.time()
            ran += 1
            try:
                test()
                harness.log("PASS %s (%.1fs)" % (name, time.time() - t0))
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failed.append(name)
                harness.log("FAIL %s (%.1fs): %s" % (name, time.time() - t0, e))
                if not isinstance(e, harness.TestFailure):
                    traceback.print_exc()
    if not ran:
        # A filter that matches nothing must not look like a green run.
        harness.log("integration: no test matches %s" % " ".join(wanted))
        sys.exit(1)
    if failed:
        harness.log("failed: " + ", ".join(failed))
    harness.log("integration tests took %.0fs" % (time.time() - t_all))
    harness.log("integration: %d passed, %d failed" % (ran - len(failed), len(failed)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
