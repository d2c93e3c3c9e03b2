#!/usr/bin/env bash
# tandem run (combined mode by default; --mode role --role galph|ralph for one actor).
exec "${TANDEM_PYTHON:-python3}" -m tandem run "$@"
