"""Texts of the balances page (``/console/balances``)."""

MESSAGES: dict[str, tuple[str, str]] = {
    "balances.title": ("Balances", "Soldes"),
    "balances.shared": (
        "These are momoflow's accounts at each provider, shared by every merchant of this "
        "deployment: every operator sees the same figures.",
        "Ce sont les comptes de momoflow chez chaque fournisseur, communs à tous les "
        "marchands de ce déploiement : chaque opérateur voit les mêmes chiffres.",
    ),
    "balances.explain": (
        "Expected is what the journal says the account should hold (settled payins in, less "
        "their fees; settled payouts and refunds out, with theirs). Reported is the balance "
        "the provider last gave. Money put in or taken out outside momoflow (top-ups, "
        "withdrawals) is not in the journal, so a steady difference is normal: a change of "
        "it from one day to the next is what to look at.",
        "Attendu : ce que le journal dit que le compte devrait contenir (encaissements réglés "
        "moins leurs frais ; paiements et remboursements réglés avec les leurs). Déclaré : le "
        "dernier solde donné par le fournisseur. L'argent déposé ou retiré hors de momoflow "
        "(approvisionnements, retraits) n'est pas dans le journal : un écart stable est "
        "normal, c'est sa variation d'un jour à l'autre qu'il faut surveiller.",
    ),
    "balances.none": (
        "No balance yet: no money has moved and no provider has reported a balance.",
        "Aucun solde pour l'instant : aucun argent n'a bougé et aucun fournisseur n'a "
        "déclaré de solde.",
    ),
    "balances.col.provider": ("Provider", "Fournisseur"),
    "balances.col.currency": ("Currency", "Devise"),
    "balances.col.expected": ("Expected (journal)", "Attendu (journal)"),
    "balances.col.reported": ("Reported", "Déclaré"),
    "balances.col.reported_at": ("Reported at", "Déclaré le"),
    "balances.col.source": ("Source", "Source"),
    "balances.col.difference": ("Difference", "Écart"),
    "balances.never_reported": ("never reported", "jamais déclaré"),
    "balances.report.title": (
        "Differences of the latest daily reconciliation report",
        "Écarts du dernier rapport de rapprochement quotidien",
    ),
    "balances.report.explain": (
        "Each provider's newest daily report compares its records of one day with "
        "momoflow's. Only the differences about your transactions are listed.",
        "Le rapport quotidien le plus récent de chaque fournisseur compare ses "
        "enregistrements d'une journée avec ceux de momoflow. Seuls les écarts concernant "
        "vos transactions sont listés.",
    ),
    "balances.report.none": (
        "No report yet: the daily reconciliation report has not run on this deployment.",
        "Pas encore de rapport : le rapport de rapprochement quotidien n'a pas encore tourné "
        "sur ce déploiement.",
    ),
    "balances.report.unreadable": (
        "The newest report of {provider} could not be read.",
        "Le rapport le plus récent de {provider} n'a pas pu être lu.",
    ),
    "balances.report.col.provider": ("Provider", "Fournisseur"),
    "balances.report.col.day": ("Day", "Jour"),
    "balances.report.col.generated": ("Generated at", "Produit le"),
    "balances.report.col.transactions": ("momoflow transactions", "Transactions momoflow"),
    "balances.report.col.matched": ("Matched", "Rapprochées"),
    "balances.report.col.mismatches": ("Differences (all)", "Écarts (tous)"),
    "balances.report.col.note": ("Note", "Remarque"),
    "balances.report.incomplete": (
        "incomplete: too many transactions",
        "incomplet : trop de transactions",
    ),
    "balances.report.no_differences": (
        "No difference about your transactions in the latest reports.",
        "Aucun écart concernant vos transactions dans les derniers rapports.",
    ),
    "balances.report.hidden": (
        "{count} difference(s) concern no transaction of yours (another merchant's, or "
        "unknown to momoflow) and are not shown; they are in the report files.",
        "{count} écart(s) ne concernent aucune de vos transactions (celles d'un autre "
        "marchand, ou inconnues de momoflow) et ne sont pas affichés ; ils figurent dans les "
        "fichiers du rapport.",
    ),
    "balances.diff.col.provider": ("Provider", "Fournisseur"),
    "balances.diff.col.day": ("Day", "Jour"),
    "balances.diff.col.kind": ("Difference", "Écart"),
    "balances.diff.col.transaction": ("Transaction", "Transaction"),
    "balances.diff.col.provider_id": ("Provider id", "Identifiant fournisseur"),
    "balances.diff.col.momoflow_status": ("momoflow says", "Selon momoflow"),
    "balances.diff.col.provider_status": ("Provider says", "Selon le fournisseur"),
    "balances.diff.col.momoflow_amount": ("momoflow amount", "Montant momoflow"),
    "balances.diff.col.provider_amount": ("Provider amount", "Montant fournisseur"),
    "balances.diff.col.detail": ("Detail", "Détail"),
    "balances.mismatch.provider_succeeded_momoflow_failed": (
        "paid at the provider, failed at momoflow",
        "payé chez le fournisseur, échoué chez momoflow",
    ),
    "balances.mismatch.provider_succeeded_momoflow_reconciling": (
        "paid at the provider, in doubt at momoflow",
        "payé chez le fournisseur, en suspens chez momoflow",
    ),
    "balances.mismatch.provider_succeeded_momoflow_not_final": (
        "paid at the provider, not final at momoflow",
        "payé chez le fournisseur, non final chez momoflow",
    ),
    "balances.mismatch.unknown_at_momoflow": (
        "unknown to momoflow",
        "inconnue de momoflow",
    ),
    "balances.mismatch.duplicate_at_provider": (
        "twice at the provider",
        "en double chez le fournisseur",
    ),
    "balances.mismatch.momoflow_succeeded_provider_failed": (
        "succeeded at momoflow, failed at the provider",
        "réussie chez momoflow, échouée chez le fournisseur",
    ),
    "balances.mismatch.momoflow_succeeded_provider_not_final": (
        "succeeded at momoflow, not final at the provider",
        "réussie chez momoflow, non finale chez le fournisseur",
    ),
    "balances.mismatch.momoflow_failed_provider_not_final": (
        "failed at momoflow, still in progress at the provider",
        "échouée chez momoflow, toujours en cours chez le fournisseur",
    ),
    "balances.mismatch.momoflow_succeeded_provider_no_record": (
        "succeeded at momoflow, no record at the provider",
        "réussie chez momoflow, absente chez le fournisseur",
    ),
    "balances.mismatch.provider_failed_momoflow_reconciling": (
        "failed at the provider, in doubt at momoflow",
        "échouée chez le fournisseur, en suspens chez momoflow",
    ),
    "balances.mismatch.momoflow_reconciling_provider_no_record": (
        "in doubt at momoflow, no record at the provider",
        "en suspens chez momoflow, absente chez le fournisseur",
    ),
    "balances.mismatch.amount_differs": ("amounts differ", "montants différents"),
}
