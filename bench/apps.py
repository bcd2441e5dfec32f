from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    label = "o2o_bench"

    def ready(self):
        from bench import consumers  # noqa: F401  (registers the outbox consumer)
