import json
import sys

from django.core.management.base import BaseCommand

from apps.operations.fleet import fleet_status


class Command(BaseCommand):
    help = (
        "List live workers, the queues each consumes and what each is doing, and every "
        "environment queue that no worker consumes. Exits 1 when there is such a queue."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the answer as JSON"
        )

    def handle(self, *args, as_json: bool = False, **options):
        fleet = fleet_status()
        if as_json:
            self.stdout.write(json.dumps(fleet.as_dict(), indent=2))
        else:
            self.stdout.write(render(fleet))
        if fleet.unconsumed:
            sys.exit(1)


def render(fleet) -> str:
    lines = [f"source: {fleet.source}"]
    if fleet.note:
        lines.append(fleet.note)
    if not fleet.workers:
        lines.append("no live worker")
    for worker in fleet.workers:
        queues = ", ".join(worker.queues) if worker.queues is not None else "unknown"
        lines.append(f"{worker.name}  queues: {queues}")
        lines += [f"  - {task}" for task in worker.doing] or ["  idle"]
    for queue in fleet.unconsumed:
        lines.append(f"WARNING: no worker consumes {queue}")
    return "\n".join(lines)
