"""Jobs, their tasks and their persistence: one directory per job, ``job.json`` written atomically."""

from digits.jobs.model import Job, Status, Task, new_job_id
from digits.jobs.store import DeleteRefused, JobSaveError, JobStore

__all__ = ["DeleteRefused", "Job", "JobSaveError", "JobStore", "Status", "Task", "new_job_id"]
