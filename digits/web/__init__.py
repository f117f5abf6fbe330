"""Views shared by every job kind: the home page, job actions, error pages."""
