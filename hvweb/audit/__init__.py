"""The audit trail: django-auditlog records changes, django-axes logins."""
