"""The benchmark of issue #7: drf-totp's endpoints against a floor, under gunicorn. See run.py."""
