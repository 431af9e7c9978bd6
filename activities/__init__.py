"""Temporal activities: every side effect of momoflow's workflows lives here."""
