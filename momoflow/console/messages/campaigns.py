"""Texts of the campaign pages."""

MESSAGES: dict[str, tuple[str, str]] = {
    # The list and the upload form
    "campaigns.list.title": ("Campaigns", "Campagnes"),
    "campaigns.list.heading": ("The merchant's campaigns", "Campagnes du marchand"),
    "campaigns.list.empty": ("No campaign yet.", "Aucune campagne pour l'instant."),
    "campaigns.list.pages": ("Pages", "Pages"),
    "campaigns.list.previous": ("Newer campaigns", "Campagnes plus récentes"),
    "campaigns.list.next": ("Older campaigns", "Campagnes plus anciennes"),
    "campaigns.upload.title": ("Upload a campaign", "Déposer une campagne"),
    "campaigns.upload.help": (
        "A CSV or JSON-lines file of at most {size} MB. Every line is checked first "
        "(pre-flight); nothing is paid until another operator approves the campaign.",
        "Un fichier CSV ou JSON lines d'au plus {size} Mo. Chaque ligne est d'abord "
        "vérifiée (pré-contrôle) ; rien n'est payé avant qu'un autre opérateur approuve la "
        "campagne.",
    ),
    "campaigns.upload.reference": ("Campaign reference", "Référence de la campagne"),
    "campaigns.upload.name": ("Name (optional)", "Nom (facultatif)"),
    "campaigns.upload.file": ("File (CSV or JSON lines)", "Fichier (CSV ou JSON lines)"),
    "campaigns.upload.submit": ("Upload and check", "Déposer et vérifier"),
    "campaigns.upload.invalid": (
        "The form has problems; nothing was uploaded.",
        "Le formulaire comporte des erreurs ; rien n'a été déposé.",
    ),
    "campaigns.upload.rejected": (
        "The file cannot be read as a campaign ({count} problem(s)); nothing was started.",
        "Le fichier n'est pas lisible comme une campagne ({count} problème(s)) ; rien n'a "
        "été lancé.",
    ),
    "campaigns.upload.problem.reference.required": (
        "Give the campaign a reference.",
        "Donnez une référence à la campagne.",
    ),
    "campaigns.upload.problem.reference.pattern": (
        "The reference may hold letters, digits, '.', '_', ':' and '-' (64 characters at "
        "most), starting with a letter or a digit.",
        "La référence peut contenir lettres, chiffres, « . », « _ », « : » et « - » (64 "
        "caractères au plus), et commence par une lettre ou un chiffre.",
    ),
    "campaigns.upload.problem.name.max_length": (
        "The name is longer than 100 characters.",
        "Le nom dépasse 100 caractères.",
    ),
    "campaigns.upload.problem.file.required": ("Choose a file.", "Choisissez un fichier."),
    "campaigns.upload.problem.file.format": (
        "The file must be CSV (.csv) or JSON lines (.jsonl, .ndjson).",
        "Le fichier doit être au format CSV (.csv) ou JSON lines (.jsonl, .ndjson).",
    ),
    # Fields
    "campaigns.field.reference": ("Reference", "Référence"),
    "campaigns.field.name": ("Name", "Nom"),
    "campaigns.field.phase": ("Phase", "Étape"),
    "campaigns.field.reason": ("Why", "Motif"),
    "campaigns.field.file": ("File", "Fichier"),
    "campaigns.field.lines": ("Lines", "Lignes"),
    "campaigns.field.invalid_lines": ("Invalid lines", "Lignes invalides"),
    "campaigns.field.submitted": ("Submitted", "Déposée"),
    "campaigns.field.submitted_by": ("Submitted by", "Déposée par"),
    "campaigns.field.submitted_at": ("Submitted at", "Déposée le"),
    "campaigns.field.approved_by": ("Approved by", "Approuvée par"),
    "campaigns.field.approved_at": ("Approved at", "Approuvée le"),
    "campaigns.field.cancelled_by": ("Cancelled by", "Annulée par"),
    "campaigns.field.started_at": ("Payment started at", "Paiements commencés le"),
    "campaigns.field.completed_at": ("Finished at", "Terminée le"),
    "campaigns.unknown": ("unknown", "inconnu"),
    # Phases
    "campaigns.phase.preflight": ("pre-flight", "pré-contrôle"),
    "campaigns.phase.awaiting_approval": ("awaiting approval", "en attente d'approbation"),
    "campaigns.phase.running": ("running", "en cours"),
    "campaigns.phase.paused": ("paused", "en pause"),
    "campaigns.phase.draining": ("finishing", "en finalisation"),
    "campaigns.phase.completed": ("completed", "terminée"),
    "campaigns.phase.cancelled": ("cancelled", "annulée"),
    "campaigns.phase.rejected": ("rejected", "rejetée"),
    "campaigns.phase.blocked": ("blocked", "bloquée"),
    # Line statuses
    "campaigns.status.created": ("created", "créée"),
    "campaigns.status.quoting": ("quoting", "cotation"),
    "campaigns.status.submitting": ("submitting", "envoi"),
    "campaigns.status.pending": ("pending", "en attente"),
    "campaigns.status.succeeded": ("paid", "payée"),
    "campaigns.status.failed": ("failed", "échouée"),
    "campaigns.status.declined": ("declined", "refusée"),
    "campaigns.status.cancelled": ("cancelled", "annulée"),
    "campaigns.status.expired": ("expired", "expirée"),
    "campaigns.status.reconciling": ("in doubt (reconciling)", "en suspens (rapprochement)"),
    "campaigns.status.late_succeeded": ("paid late", "payée tardivement"),
    "campaigns.status.skipped": (
        "skipped (reference already used)",
        "ignorée (référence déjà utilisée)",
    ),
    # One campaign
    "campaigns.detail.title": ("Campaign {reference}", "Campagne {reference}"),
    "campaigns.detail.back": ("All campaigns", "Toutes les campagnes"),
    "campaigns.detail.back_to_campaign": ("Back to the campaign", "Retour à la campagne"),
    "campaigns.detail.facts": ("The campaign", "La campagne"),
    "campaigns.detail.lines": (
        "{lines} ({valid} valid, {invalid} invalid)",
        "{lines} ({valid} valides, {invalid} invalides)",
    ),
    "campaigns.detail.report": (
        "Download the report (CSV)",
        "Télécharger le rapport (CSV)",
    ),
    # Pre-flight
    "campaigns.preflight.title": ("Pre-flight", "Pré-contrôle"),
    "campaigns.preflight.pending": (
        "Pre-flight is still checking the file.",
        "Le pré-contrôle vérifie encore le fichier.",
    ),
    "campaigns.preflight.checked_at": ("Checked at {at}.", "Vérifié le {at}."),
    "campaigns.preflight.blocking": (
        "Blocking problems (approval needs an override)",
        "Problèmes bloquants (l'approbation exige un passage en force)",
    ),
    "campaigns.preflight.warnings": ("Warnings", "Avertissements"),
    "campaigns.preflight.provider": ("Provider", "Agrégateur"),
    "campaigns.preflight.currency": ("Currency", "Devise"),
    "campaigns.preflight.amount": ("Amount", "Montant"),
    "campaigns.preflight.fees": ("Fees", "Frais"),
    "campaigns.preflight.fees_unknown": ("unknown", "inconnus"),
    "campaigns.preflight.fee_lines": (
        "quoted {quoted}, estimated {estimated}, unknown {unknown}",
        "cotés {quoted}, estimés {estimated}, inconnus {unknown}",
    ),
    "campaigns.preflight.balance": ("Balance", "Solde"),
    "campaigns.preflight.balance_unknown": ("unknown", "inconnu"),
    "campaigns.preflight.required": ("Required", "Nécessaire"),
    "campaigns.preflight.at_least": (
        "at least (some fees unknown)",
        "au moins (frais en partie inconnus)",
    ),
    "campaigns.preflight.short_by": ("Short by", "Manque"),
    "campaigns.preflight.available": ("Available", "Disponible"),
    "campaigns.preflight.available_yes": ("yes", "oui"),
    "campaigns.preflight.available_no": ("no", "non"),
    "campaigns.preflight.available_unknown": ("unknown", "inconnu"),
    # Problems
    "campaigns.problems.title": ("Line problems ({count})", "Problèmes des lignes ({count})"),
    "campaigns.problems.none": (
        "No line has a problem.",
        "Aucune ligne ne pose problème.",
    ),
    "campaigns.problems.line": ("Line", "Ligne"),
    "campaigns.problems.field": ("Field", "Champ"),
    "campaigns.problems.rule": ("Rule", "Règle"),
    "campaigns.problems.message": ("Problem", "Problème"),
    # Approval
    "campaigns.approve.title": ("Approval", "Approbation"),
    "campaigns.approve.own": (
        "You uploaded this campaign: another operator must approve it.",
        "Vous avez déposé cette campagne : un autre opérateur doit l'approuver.",
    ),
    "campaigns.approve.override": (
        "Approve despite the blocking problems (I take responsibility)",
        "Approuver malgré les problèmes bloquants (j'en prends la responsabilité)",
    ),
    "campaigns.approve.submit": ("Approve and pay", "Approuver et payer"),
    # Control
    "campaigns.control.title": ("Control", "Pilotage"),
    "campaigns.control.pause": ("Pause", "Mettre en pause"),
    "campaigns.control.resume": ("Resume", "Reprendre"),
    "campaigns.control.cancel": ("Cancel the campaign", "Annuler la campagne"),
    "campaigns.form.reason": ("Reason", "Motif"),
    "campaigns.form.reason_optional": ("Reason (optional)", "Motif (facultatif)"),
    # Progress
    "campaigns.progress.title": ("Progress", "Avancement"),
    "campaigns.progress.settled": (
        "{settled} of {valid} valid lines settled",
        "{settled} lignes valides réglées sur {valid}",
    ),
    "campaigns.progress.started": ("Lines started", "Lignes lancées"),
    "campaigns.progress.in_flight": ("In flight", "En cours"),
    "campaigns.progress.skipped": ("Skipped", "Ignorées"),
    "campaigns.progress.rate": ("Rate", "Débit"),
    "campaigns.progress.per_second": ("lines/s", "lignes/s"),
    "campaigns.progress.eta": ("Time left (estimate)", "Temps restant (estimation)"),
    "campaigns.progress.paid": ("Paid", "Payé"),
    "campaigns.progress.status": ("Status", "Statut"),
    "campaigns.progress.none_yet": (
        "No line has settled yet.",
        "Aucune ligne n'est encore réglée.",
    ),
    "campaigns.progress.provider_paused": (
        "{provider} is paused:",
        "{provider} est en pause :",
    ),
    "campaigns.duration.hours": ("{h} h {m} min", "{h} h {m} min"),
    "campaigns.duration.minutes": ("{m} min {s} s", "{m} min {s} s"),
    "campaigns.duration.seconds": ("{s} s", "{s} s"),
    # Confirmations
    "campaigns.done.approved": (
        "Campaign approved: its valid lines are being paid.",
        "Campagne approuvée : ses lignes valides sont en cours de paiement.",
    ),
    "campaigns.done.paused": (
        "Campaign paused: lines already sent finish.",
        "Campagne mise en pause : les lignes déjà envoyées se terminent.",
    ),
    "campaigns.done.resumed": ("Campaign resumed.", "Campagne reprise."),
    "campaigns.done.cancelled": (
        "Campaign cancelled: no new line starts; lines already sent finish.",
        "Campagne annulée : aucune nouvelle ligne ne part ; les lignes déjà envoyées se terminent.",
    ),
    # Errors
    "campaigns.error.four_eyes": (
        "Four-eyes rule: you uploaded this campaign, so another operator must approve it.",
        "Règle des quatre yeux : vous avez déposé cette campagne, un autre opérateur doit "
        "l'approuver.",
    ),
    "campaigns.error.refused": (
        "The campaign refused: {message}",
        "La campagne a refusé : {message}",
    ),
    "campaigns.error.reason_required": (
        "Give a reason: it is kept in the audit trail.",
        "Indiquez un motif : il est conservé dans le journal d'audit.",
    ),
    "campaigns.error.reason_too_long": (
        "The reason is longer than {max} characters.",
        "Le motif dépasse {max} caractères.",
    ),
    "campaigns.error.too_large": (
        "The file is larger than {limit} bytes; nothing was uploaded.",
        "Le fichier dépasse {limit} octets ; rien n'a été déposé.",
    ),
    "campaigns.error.preflights_busy": (
        "{count} campaign(s) of this merchant are in pre-flight already, the most allowed "
        "at once; nothing was started. Retry in {retry_after} s.",
        "{count} campagne(s) de ce marchand sont déjà en pré-contrôle, le maximum permis ; "
        "rien n'a été lancé. Réessayez dans {retry_after} s.",
    ),
    "campaigns.error.limits_unavailable": (
        "The merchant's pre-flight slots cannot be checked right now; nothing was started. "
        "Retry shortly.",
        "Les créneaux de pré-contrôle du marchand ne peuvent pas être vérifiés pour le "
        "moment ; rien n'a été lancé. Réessayez dans un instant.",
    ),
    "campaigns.error.reference_in_use": (
        "This reference was already used for another file, name or options: choose a new "
        "reference.",
        "Cette référence a déjà servi pour un autre fichier, nom ou options : choisissez une "
        "nouvelle référence.",
    ),
    "campaigns.error.no_worker": (
        "The campaign exists but no worker answered in time; retry shortly.",
        "La campagne existe mais aucun worker n'a répondu à temps ; réessayez dans un instant.",
    ),
}
