"""Texts of the transactions pages (the list, the export, one transaction)."""

MESSAGES: dict[str, tuple[str, str]] = {
    # ------------------------------------------------------------------ the list
    "tx.list.title": ("Transactions", "Transactions"),
    "tx.list.empty": (
        "No transaction matches these filters.",
        "Aucune transaction ne correspond à ces filtres.",
    ),
    "tx.filter.kind": ("Kind", "Type"),
    "tx.filter.status": ("Status", "Statut"),
    "tx.filter.provider": ("Provider", "Agrégateur"),
    "tx.filter.country": ("Country", "Pays"),
    "tx.filter.campaign": ("Campaign", "Campagne"),
    "tx.filter.created_from": ("Created from", "Créée à partir du"),
    "tx.filter.created_to": ("Created until", "Créée jusqu'au"),
    "tx.filter.reference": ("Reference", "Référence"),
    "tx.filter.after": ("Page", "Page"),
    "tx.filter.any": ("Any", "Tous"),
    "tx.filter.apply": ("Search", "Rechercher"),
    "tx.filter.reset": ("Clear the filters", "Effacer les filtres"),
    "tx.filter.reference_hint": (
        "A whole reference, or the start of one",
        "Une référence entière, ou son début",
    ),
    "tx.filter.dates_hint": (
        "Dates are days in {zone}, both included. A reference finds every reference that "
        "starts with it.",
        "Les dates sont des jours en {zone}, bornes comprises. Une référence trouve toutes "
        "les références qui commencent par elle.",
    ),
    "tx.problems.title": (
        "These filters cannot be used:",
        "Ces filtres ne peuvent pas être utilisés :",
    ),
    "tx.rule.one_of": (
        "{label} ({field}): “{value}” is not one of {allowed} (rule: {rule}).",
        "{label} ({field}) : « {value} » n'est pas l'une des valeurs {allowed} (règle : {rule}).",
    ),
    "tx.rule.reference": (
        "{label} ({field}): “{value}” is not a reference: letters, digits and . _ : - only, "
        "starting with a letter or a digit, at most 64 characters (rule: {rule}).",
        "{label} ({field}) : « {value} » n'est pas une référence : lettres, chiffres et "
        ". _ : - seulement, commençant par une lettre ou un chiffre, 64 caractères au plus "
        "(règle : {rule}).",
    ),
    "tx.rule.date": (
        "{label} ({field}): “{value}” is not a date written YYYY-MM-DD (rule: {rule}).",
        "{label} ({field}) : « {value} » n'est pas une date écrite AAAA-MM-JJ (règle : {rule}).",
    ),
    "tx.rule.out_of_range": (
        "{label} ({field}): {value} is outside the years 1 to 9999 (rule: {rule}).",
        "{label} ({field}) : {value} est hors des années 1 à 9999 (règle : {rule}).",
    ),
    "tx.rule.period": (
        "{label} ({field}): the period ends ({last}) before it starts ({first}) (rule: {rule}).",
        "{label} ({field}) : la période finit ({last}) avant de commencer ({first}) "
        "(règle : {rule}).",
    ),
    "tx.rule.after": (
        "{label} ({field}): no transaction of this kind has the reference “{value}”: go back "
        "to the first page (rule: {rule}).",
        "{label} ({field}) : aucune transaction de ce type n'a la référence « {value} » : "
        "revenez à la première page (règle : {rule}).",
    ),
    "tx.export.filtered": (
        "Download these transactions (CSV)",
        "Télécharger ces transactions (CSV)",
    ),
    "tx.export.statement": (
        "Download the statement of the period, every kind (CSV)",
        "Télécharger le relevé de la période, tous types (CSV)",
    ),
    "tx.col.created": ("Created", "Créée le"),
    "tx.col.reference": ("Reference", "Référence"),
    "tx.col.kind": ("Kind", "Type"),
    "tx.col.provider": ("Provider", "Agrégateur"),
    "tx.col.country": ("Country", "Pays"),
    "tx.col.amount": ("Amount", "Montant"),
    "tx.col.fees": ("Fees", "Frais"),
    "tx.col.status": ("Status", "Statut"),
    "tx.col.campaign": ("Campaign", "Campagne"),
    "tx.pager.label": ("Pages", "Pages"),
    "tx.pager.first": ("First page", "Première page"),
    "tx.pager.next": ("Next {size}", "{size} suivantes"),
    # ------------------------------------------------------------------ kinds and statuses
    "tx.kind.payout": ("Payout", "Paiement sortant"),
    "tx.kind.payin": ("Payin", "Encaissement"),
    "tx.kind.refund": ("Refund", "Remboursement"),
    "tx.status.created": ("created", "créée"),
    "tx.status.quoting": ("quoting", "cotation"),
    "tx.status.submitting": ("submitting", "envoi"),
    "tx.status.pending": ("pending", "en attente"),
    "tx.status.succeeded": ("succeeded", "réussie"),
    "tx.status.failed": ("failed", "échouée"),
    "tx.status.declined": ("declined", "refusée"),
    "tx.status.cancelled": ("cancelled", "annulée"),
    "tx.status.expired": ("expired", "expirée"),
    "tx.status.reconciling": ("reconciling (in doubt)", "en rapprochement (incertaine)"),
    "tx.status.late_succeeded": ("succeeded late", "réussie tardivement"),
    # ------------------------------------------------------------------ one transaction
    "tx.detail.title": ("{kind} {reference}", "{kind} {reference}"),
    "tx.detail.back": ("Back to the transactions", "Retour aux transactions"),
    "tx.detail.facts": ("Facts", "Informations"),
    "tx.detail.failure_code": ("Failure code", "Code d'échec"),
    "tx.detail.failure_message": ("Failure message", "Message d'échec"),
    "tx.detail.resolution": ("Resolved by hand", "Résolue manuellement"),
    "tx.detail.resolution_text": (
        "{outcome}, by {operator} on {at}:",
        "{outcome}, par {operator} le {at} :",
    ),
    "tx.resolution.paid": ("paid", "payée"),
    "tx.resolution.failed": ("not paid", "non payée"),
    "tx.detail.operator_network": ("Operator (wallet)", "Opérateur (portefeuille)"),
    "tx.detail.mode": ("Payment mode", "Mode de paiement"),
    "tx.detail.phone_payout": ("Recipient's phone", "Téléphone du bénéficiaire"),
    "tx.detail.phone_payin": ("Customer's phone", "Téléphone du client"),
    "tx.detail.refund_reason": ("Reason for the refund", "Motif du remboursement"),
    "tx.detail.payin": ("Refunded payin", "Encaissement remboursé"),
    "tx.detail.description": ("Description", "Libellé"),
    "tx.detail.created": ("Created", "Créée le"),
    "tx.detail.submitted": ("Submitted to the provider", "Envoyée à l'agrégateur le"),
    "tx.detail.completed": ("Completed", "Terminée le"),
    "tx.detail.updated": ("Last change", "Dernière modification"),
    "tx.detail.amounts": ("Amounts and fees", "Montants et frais"),
    "tx.detail.fees_not_charged": (
        "(quoted; not charged: no money moved)",
        "(annoncés ; non prélevés : aucun argent n'a circulé)",
    ),
    "tx.detail.provider_amount": (
        "Amount processed by the provider",
        "Montant traité par l'agrégateur",
    ),
    "tx.detail.amount_differs": (
        "Warning: the provider processed {provider_amount}, not the {amount} asked.",
        "Attention : l'agrégateur a traité {provider_amount}, et non les {amount} demandés.",
    ),
    "tx.detail.net_amount": ("Net amount received", "Montant net reçu"),
    "tx.detail.provider_ids": ("Provider and workflow ids", "Identifiants agrégateur et workflow"),
    "tx.detail.provider_transaction_id": (
        "Provider's transaction id",
        "Identifiant de transaction de l'agrégateur",
    ),
    "tx.detail.provider_reference": ("Provider's reference", "Référence de l'agrégateur"),
    "tx.detail.provider_status": ("Provider's last status", "Dernier statut de l'agrégateur"),
    "tx.detail.workflow_id": ("Workflow id", "Identifiant du workflow"),
    "tx.detail.run_id": ("Run id", "Identifiant d'exécution"),
    "tx.detail.temporal_link": (
        "Open this run in the Temporal UI",
        "Ouvrir cette exécution dans l'interface Temporal",
    ),
    "tx.detail.timeline": ("Timeline", "Chronologie"),
    "tx.detail.none": ("Nothing recorded yet.", "Rien d'enregistré pour l'instant."),
    "tx.detail.notifications": ("Merchant notifications", "Notifications au marchand"),
    "tx.detail.no_notifications": (
        "None: no notification was sent for this transaction (it has no notification URL, "
        "or nothing to tell yet).",
        "Aucune : aucune notification n'a été envoyée pour cette transaction (elle n'a pas "
        "d'URL de notification, ou rien à annoncer pour l'instant).",
    ),
    "tx.detail.journal": ("Journal entries", "Écritures comptables"),
    "tx.detail.no_journal": (
        "None: no money moved for this transaction yet.",
        "Aucune : aucun argent n'a encore circulé pour cette transaction.",
    ),
    "tx.timeline.at": ("Time", "Heure"),
    "tx.timeline.note": ("Note", "Note"),
    "tx.timeline.actor": ("By", "Par"),
    "tx.actor.workflow": ("the workflow", "le workflow"),
    "tx.actor.records_verify": ("the records check", "la vérification des enregistrements"),
    "tx.notification.event": ("Event", "Événement"),
    "tx.notification.id": ("Event id", "Identifiant de l'événement"),
    "tx.notification.status": ("Delivery", "Remise"),
    "tx.notification.attempts": ("Attempts", "Tentatives"),
    "tx.notification.http_status": ("HTTP answer", "Réponse HTTP"),
    "tx.notification.delivered_at": ("Delivered", "Remise le"),
    "tx.notification.last_error": ("Last error", "Dernière erreur"),
    "tx.delivery.pending": ("being delivered", "en cours de remise"),
    "tx.delivery.delivered": ("delivered", "remise"),
    "tx.delivery.given_up": ("given up", "abandonnée"),
    "tx.journal.account": ("Account", "Compte"),
    "tx.journal.debit": ("Debit", "Débit"),
    "tx.journal.credit": ("Credit", "Crédit"),
    "tx.journal.balance": (
        "Sum of the lines ({currency}), zero when balanced",
        "Somme des lignes ({currency}), nulle si équilibrée",
    ),
}
