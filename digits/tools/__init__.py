"""Programs that run as child processes of the scheduler (and by hand, with the arguments the job log shows)."""
