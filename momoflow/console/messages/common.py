"""Texts shared by every page: navigation, roles, login, errors."""

MESSAGES: dict[str, tuple[str, str]] = {
    "nav.label": ("Console sections", "Sections de la console"),
    "nav.transactions": ("Transactions", "Transactions"),
    "nav.campaigns": ("Campaigns", "Campagnes"),
    "nav.in_doubt": ("Money in doubt", "Argent en suspens"),
    "nav.balances": ("Balances", "Soldes"),
    "nav.audit": ("Audit trail", "Journal d'audit"),
    "nav.logout": ("Log out", "Se déconnecter"),
    "footer.time_zone": ("Times are shown in {zone}.", "Les heures sont affichées en {zone}."),
    "role.viewer": ("viewer", "lecteur"),
    "role.maker": ("maker", "initiateur"),
    "role.checker": ("checker", "valideur"),
    "role.admin": ("admin", "administrateur"),
    "login.title": ("Log in to the finance console", "Connexion à la console financière"),
    "login.name": ("Operator name", "Nom d'opérateur"),
    "login.password": ("Password", "Mot de passe"),
    "login.submit": ("Log in", "Se connecter"),
    "login.error.wrong": (
        "Wrong name or password.",
        "Nom ou mot de passe incorrect.",
    ),
    "login.error.throttled": (
        "Too many failed logins: wait a while before trying again.",
        "Trop d'échecs de connexion : patientez avant de réessayer.",
    ),
    "login.error.expired": (
        "The login form expired: please log in again.",
        "Le formulaire de connexion a expiré : reconnectez-vous.",
    ),
    "error.title": ("Error {status}", "Erreur {status}"),
    "error.back": ("Back to the transactions", "Retour aux transactions"),
    "console.error.forbidden": (
        "Your role ({role}) does not allow this.",
        "Votre rôle ({role}) ne permet pas cette action.",
    ),
    "console.error.csrf": (
        "This form is not valid any more (missing or wrong security token): reload the page "
        "and try again.",
        "Ce formulaire n'est plus valide (jeton de sécurité absent ou incorrect) : rechargez "
        "la page et réessayez.",
    ),
    "console.error.no_store": (
        "No record store is configured (MOMOFLOW_DATABASE__URL): the console needs one.",
        "Aucune base d'enregistrements n'est configurée (MOMOFLOW_DATABASE__URL) : la console "
        "en a besoin.",
    ),
    "console.error.store_unavailable": (
        "The record store cannot be reached right now; nothing was changed. Retry shortly.",
        "La base d'enregistrements est injoignable pour le moment ; rien n'a été modifié. "
        "Réessayez dans un instant.",
    ),
    "console.error.temporal_unavailable": (
        "The orchestration server cannot be reached right now; nothing was changed. Retry shortly.",
        "Le serveur d'orchestration est injoignable pour le moment ; rien n'a été modifié. "
        "Réessayez dans un instant.",
    ),
    "console.error.not_found": ("Nothing found here.", "Rien à cette adresse."),
    "console.error.length_required": (
        "The request did not say its size (Content-Length); nothing was changed.",
        "La requête n'indiquait pas sa taille (Content-Length) ; rien n'a été modifié.",
    ),
    "console.error.too_large": (
        "The request is larger than {limit} bytes; nothing was changed.",
        "La requête dépasse {limit} octets ; rien n'a été modifié.",
    ),
}
