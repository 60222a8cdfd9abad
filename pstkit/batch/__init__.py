"""Many mailboxes: a batch of independent mailbox jobs and the engines that run them.

    csvfiles / mapping_csv   the batch CSVs -> jobs (pure)
    jobs                     one mailbox job: `run_job`, the same under every engine
    state                    one state record per mailbox (pure)
    engine                   the executor interface and the local engine (processes)
    celery_engine, board     the celery engine and its records in Redis (optional extra)
    secretbox, records       sealed passwords and JSON codec for what crosses a broker
"""

from pstkit.batch.csvfiles import BatchMailbox, read_users, store_name
from pstkit.batch.jobs import BatchResult, Job, JobSecrets

__all__ = ["BatchMailbox", "BatchResult", "Job", "JobSecrets", "read_users", "store_name"]
