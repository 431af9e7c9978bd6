"""Texts of the money-in-doubt page (``/console/in-doubt``)."""

MESSAGES: dict[str, tuple[str, str]] = {
    "doubt.title": ("Money in doubt", "Argent en suspens"),
    "doubt.intro": (
        "Transactions whose outcome at the provider is not known: the money may or may not "
        "have moved. The reconciliation sweep rechecks them; resolve one by hand only with "
        "evidence (the provider's dashboard, a support ticket). Oldest first.",
        "Transactions dont le résultat chez le fournisseur est inconnu : l'argent a pu "
        "bouger, ou non. Le rapprochement automatique les revérifie ; n'en clôturez une à la "
        "main qu'avec une preuve (tableau de bord du fournisseur, ticket du support). Les plus "
        "anciennes d'abord.",
    ),
    "doubt.total": (
        "{count} transaction(s) in doubt.",
        "{count} transaction(s) en suspens.",
    ),
    "doubt.empty": (
        "Nothing is in doubt: every transaction has a known outcome.",
        "Rien n'est en suspens : chaque transaction a un résultat connu.",
    ),
    "doubt.col.kind": ("Kind", "Type"),
    "doubt.col.reference": ("Reference", "Référence"),
    "doubt.col.provider": ("Provider", "Fournisseur"),
    "doubt.col.amount": ("Amount", "Montant"),
    "doubt.col.since": ("In doubt since", "En suspens depuis le"),
    "doubt.col.age": ("For", "Depuis"),
    "doubt.col.reason": ("Why it is in doubt", "Pourquoi en suspens"),
    "doubt.col.provider_view": ("The provider's view", "Ce que dit le fournisseur"),
    "doubt.col.resolve": ("Resolve", "Clôturer"),
    "doubt.kind.payout": ("payout", "paiement sortant"),
    "doubt.kind.payin": ("payin", "encaissement"),
    "doubt.kind.refund": ("refund", "remboursement"),
    "doubt.age.days": ("{d} d {h} h", "{d} j {h} h"),
    "doubt.age.hours": ("{h} h {m} min", "{h} h {m} min"),
    "doubt.age.minutes": ("{m} min", "{m} min"),
    "doubt.age.seconds": ("less than a minute", "moins d'une minute"),
    "doubt.reason.settlement_unknown": (
        "The provider took the transfer but gave no final status before the settle deadline.",
        "Le fournisseur a pris le transfert mais n'a donné aucun statut final avant "
        "l'échéance de règlement.",
    ),
    "doubt.reason.create_outcome_unknown": (
        "The outcome of the create call is unknown: the provider may hold the transaction.",
        "Le résultat de l'appel de création est inconnu : le fournisseur détient peut-être "
        "la transaction.",
    ),
    "doubt.reason.amount_mismatch": (
        "The provider reported another amount than the one asked: check which amount moved.",
        "Le fournisseur a indiqué un autre montant que celui demandé : vérifiez quel montant "
        "a bougé.",
    ),
    "doubt.reason.expiry_unconfirmed": (
        "The payment window ended but the provider's status could not be read: the customer "
        "may have paid.",
        "La fenêtre de paiement s'est fermée sans que le statut du fournisseur puisse être "
        "lu : le client a peut-être payé.",
    ),
    "doubt.reason.success_unconfirmed": (
        "A signed success notice arrived but the provider's status never confirmed it: the "
        "customer may have paid.",
        "Une notification de succès signée est arrivée mais le statut du fournisseur ne l'a "
        "jamais confirmée : le client a peut-être payé.",
    ),
    "doubt.reason.refund_outcome_unknown": (
        "No final answer for the refund before the deadline, and the provider has no refund "
        "status to read.",
        "Aucune réponse finale pour le remboursement avant l'échéance, et le fournisseur n'a "
        "pas de statut de remboursement à lire.",
    ),
    "doubt.reason.other": (
        "No final answer from the provider (code {code}).",
        "Aucune réponse finale du fournisseur (code {code}).",
    ),
    "doubt.reason.none": ("No reason was recorded.", "Aucune raison n'a été enregistrée."),
    "doubt.reason.workflow_words": ("In the workflow's words:", "Selon le workflow :"),
    "doubt.view.unavailable": (
        "Provider view unavailable: the orchestration server did not answer. Last recorded "
        "provider status: {status}.",
        "Vue du fournisseur indisponible : le serveur d'orchestration n'a pas répondu. "
        "Dernier statut fournisseur enregistré : {status}.",
    ),
    "doubt.view.unknown": ("none", "aucun"),
    "doubt.view.provider_status": ("Provider status", "Statut chez le fournisseur"),
    "doubt.view.provider_id": ("Provider id", "Identifiant fournisseur"),
    "doubt.view.reads": ("Status reads", "Lectures de statut"),
    "doubt.view.updated": ("Last change", "Dernier changement"),
    "doubt.view.last_note": ("Last event", "Dernier événement"),
    "doubt.view.no_answer": ("no answer yet", "pas encore de réponse"),
    "doubt.view.no_id": ("none (never returned)", "aucun (jamais renvoyé)"),
    "doubt.view.moved": (
        "Now {status}: the record is catching up.",
        "Désormais {status} : l'enregistrement se met à jour.",
    ),
    "doubt.view.not_readable_refund": (
        "The provider has no refund status to read: only its notice or an operator can "
        "settle this refund.",
        "Le fournisseur n'a pas de statut de remboursement à lire : seule sa notification ou "
        "un opérateur peut clôturer ce remboursement.",
    ),
    "doubt.view.not_readable_id": (
        "The create call never returned an id and the provider cannot search by our "
        "reference: look for the workflow id {workflow_id} in its dashboard.",
        "L'appel de création n'a jamais renvoyé d'identifiant et le fournisseur ne sait pas "
        "chercher par notre référence : cherchez l'identifiant {workflow_id} dans son tableau "
        "de bord.",
    ),
    "doubt.form.outcome": ("Outcome", "Résultat"),
    "doubt.form.choose": ("choose: paid or failed?", "choisir : payé ou échoué ?"),
    "doubt.form.paid": (
        "paid: the money moved",
        "payé : l'argent a bougé",
    ),
    "doubt.form.failed": (
        "failed: the money did not move",
        "échoué : l'argent n'a pas bougé",
    ),
    "doubt.form.reason": ("Reason (evidence)", "Motif (preuve)"),
    "doubt.form.reason_hint": (
        "Required, {min} to {max} characters: what proves the outcome.",
        "Obligatoire, de {min} à {max} caractères : ce qui prouve le résultat.",
    ),
    "doubt.form.submit": ("Resolve", "Clôturer"),
    "doubt.form.not_allowed": (
        "Your role cannot resolve.",
        "Votre rôle ne permet pas de clôturer.",
    ),
    "doubt.ok.paid": (
        "Resolved as paid: {kind} {reference}.",
        "Clôturé comme payé : {kind} {reference}.",
    ),
    "doubt.ok.failed": (
        "Resolved as failed: {kind} {reference}.",
        "Clôturé comme échoué : {kind} {reference}.",
    ),
    "doubt.ok.paid_any": (
        "The transaction was resolved as paid.",
        "La transaction a été clôturée comme payée.",
    ),
    "doubt.ok.failed_any": (
        "The transaction was resolved as failed.",
        "La transaction a été clôturée comme échouée.",
    ),
    "doubt.error.reason_length": (
        "The field reason is required and must be {min} to {max} characters long once "
        "trimmed (it has {length}); nothing was sent.",
        "Le champ reason (motif) est obligatoire et doit compter de {min} à {max} caractères "
        "sans les espaces autour (il en compte {length}) ; rien n'a été envoyé.",
    ),
    "doubt.error.reason_chars": (
        "The field reason may not hold control characters; nothing was sent.",
        "Le champ reason (motif) ne peut pas contenir de caractères de contrôle ; rien n'a "
        "été envoyé.",
    ),
    "doubt.error.outcome": (
        "The field outcome must be paid or failed; nothing was sent.",
        "Le champ outcome (résultat) doit valoir paid ou failed ; rien n'a été envoyé.",
    ),
    "doubt.error.for": ("For {kind} {reference}:", "Pour {kind} {reference} :"),
    "doubt.error.refused": (
        "The transaction refused the resolution: {why}",
        "La transaction a refusé la clôture : {why}",
    ),
    "doubt.error.outcome_unknown": (
        "The orchestration server did not answer in time: the resolution may or may not have "
        "been applied. Reload this page to check before trying again.",
        "Le serveur d'orchestration n'a pas répondu à temps : la clôture a pu être appliquée, "
        "ou non. Rechargez cette page pour vérifier avant de réessayer.",
    ),
    "doubt.error.cursor": (
        "This page link is not valid any more: start again from the oldest.",
        "Ce lien de page n'est plus valide : repartez des plus anciennes.",
    ),
    "doubt.next": ("Next page", "Page suivante"),
    "doubt.first": ("Back to the oldest", "Retour aux plus anciennes"),
    "doubt.status.created": ("created", "créée"),
    "doubt.status.quoting": ("quoting", "devis en cours"),
    "doubt.status.submitting": ("submitting", "envoi en cours"),
    "doubt.status.pending": ("pending", "en attente"),
    "doubt.status.succeeded": ("succeeded", "réussie"),
    "doubt.status.failed": ("failed", "échouée"),
    "doubt.status.declined": ("declined", "refusée"),
    "doubt.status.cancelled": ("cancelled", "annulée"),
    "doubt.status.expired": ("expired", "expirée"),
    "doubt.status.reconciling": ("reconciling", "en rapprochement"),
    "doubt.status.late_succeeded": ("late succeeded", "réussie tardivement"),
}
