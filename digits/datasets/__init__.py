"""Dataset kinds: each is a form, the tasks that build it and how its results are described."""
