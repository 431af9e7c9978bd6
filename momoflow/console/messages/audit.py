"""Texts of the audit-trail page (``/console/audit``)."""

MESSAGES: dict[str, tuple[str, str]] = {
    "audit.title": ("Audit trail", "Journal d'audit"),
    "audit.intro": (
        "Everything operators of {merchant} did in the console, newest first: who, what, on "
        "what, why, and how it ended.",
        "Tout ce que les opérateurs de {merchant} ont fait dans la console, du plus récent au "
        "plus ancien : qui, quoi, sur quoi, pourquoi, et avec quel résultat.",
    ),
    "audit.filter.actor": ("Actor", "Auteur"),
    "audit.filter.actor_hint": ("operator:name", "operator:nom"),
    "audit.filter.target": ("Target", "Cible"),
    "audit.filter.submit": ("Filter", "Filtrer"),
    "audit.filter.clear": ("Clear the filters", "Effacer les filtres"),
    "audit.col.time": ("Time", "Heure"),
    "audit.col.actor": ("Actor", "Auteur"),
    "audit.col.action": ("Action", "Action"),
    "audit.col.target": ("Target", "Cible"),
    "audit.col.reason": ("Reason", "Motif"),
    "audit.col.outcome": ("Outcome", "Résultat"),
    "audit.col.detail": ("Detail", "Détail"),
    "audit.col.address": ("Address", "Adresse"),
    "audit.outcome.ok": ("ok", "réussi"),
    "audit.outcome.refused": ("refused", "refusé"),
    "audit.outcome.failed": ("failed", "échoué"),
    "audit.outcome.throttled": ("throttled", "limité"),
    "audit.empty": ("No event matches.", "Aucun événement ne correspond."),
    "audit.next": ("Older events", "Événements plus anciens"),
    "audit.first": ("Back to the newest", "Retour aux plus récents"),
    "audit.error.cursor": (
        "This page link is not valid: start again from the newest.",
        "Ce lien de page n'est pas valide : repartez des plus récents.",
    ),
    "audit.error.filter": (
        "A filter is too long (at most {max} characters).",
        "Un filtre est trop long ({max} caractères au plus).",
    ),
}
