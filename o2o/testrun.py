"""Run the test suite (``make test``).  pytest's "no tests collected" (exit 5) is an error here:
a suite that runs nothing proves nothing."""

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    # Importing the o2o package (``python -m o2o.testrun``) loads the Celery app, which defaults
    # DJANGO_SETTINGS_MODULE to the production settings; the suite runs on the test settings.
    # (pytest's --ds option still overrides this.)
    env["DJANGO_SETTINGS_MODULE"] = "o2o.settings_test"
    result = subprocess.run([sys.executable, "-m", "pytest", *argv], env=env)
    if result.returncode == 5:
        print("make test: pytest collected no tests — treating as a failure", file=sys.stderr)
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
