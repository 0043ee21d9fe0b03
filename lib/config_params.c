/*
 * The table of known main.cf parameters and their compiled-in defaults.
 * Names and value syntax follow Postfix where the concept is the same.
 * A NULL default is computed at load time (myhostname, mydomain,
 * config_directory, the directories from configure).
 */
#include "config.h"

const struct config_param config_params[] = {
	/* Identity and locations. */
	{"config_directory", NULL},
	{"queue_directory", NULL},
	{"daemon_directory", NULL},
	{"mail_owner", "postern"},
	{"mail_name", "Postern"},
	{"myhostname", NULL},
	{"mydomain", NULL},
	{"myorigin", "$myhostname"},
	{"inet_interfaces", "all"},

	/* Logging. */
	{"maillog_file", ""},
	{"syslog_facility", "mail"},
	{"syslog_name", "postern"},
	{"debug_peer_list", ""},

	/* Address classes and routing. */
	{"mydestination", "$myhostname, localhost.$mydomain, localhost"},
	{"mynetworks", "127.0.0.0/8 [::1]/128"},
	{"relay_domains", ""},
	{"virtual_mailbox_domains", ""},
	{"virtual_mailbox_maps", ""},
	{"virtual_alias_maps", ""},
	{"virtual_mailbox_base", ""},
	{"virtual_uid_maps", ""},
	{"virtual_gid_maps", ""},
	{"local_recipient_maps", "unix:passwd.byname $alias_maps"},
	{"alias_maps", "hash:/etc/aliases"},
	{"transport_maps", ""},
	{"relayhost", ""},
	{"default_transport", "smtp"},
	{"local_transport", "local"},
	{"virtual_transport", "local"},
	{"relay_transport", "smtp"},
	{"recipient_delimiter", ""},

	/* Size and line limits. */
	{"message_size_limit", "10240000"},
	{"line_length_limit", "2048"},
	{"header_size_limit", "102400"},
	{"hopcount_limit", "50"},

	/* Local submission: sendmail and pickup. */
	{"setgid_group", "postdrop"},
	{"authorized_submit_users", "static:anyone"},
	{"local_login_sender_maps", "static:*"},

	/* smtpd. */
	{"smtpd_banner", "$myhostname ESMTP $mail_name"},
	{"smtpd_timeout", "300s"},
	{"smtpd_recipient_limit", "1000"},
	{"smtpd_recipient_overshoot_limit", "1000"},
	{"smtpd_hard_error_limit", "20"},
	{"smtpd_soft_error_limit", "10"},
	{"smtpd_client_connection_limit", "10000"},
	/* Per-client limits counted by anvil; 0 turns a limit off. */
	{"smtpd_client_connection_count_limit", "50"},
	{"smtpd_client_connection_rate_limit", "0"},
	{"smtpd_client_event_limit_exceptions", "$mynetworks"},
	{"anvil_rate_time_unit", "60s"},
	/* yes: smtpd_timeout bounds a whole command line or DATA phase. */
	{"smtpd_per_request_deadline", "no"},
	{"smtpd_min_data_rate", "500"},   /* bytes per second */
	{"smtpd_relay_restrictions",
	    "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"},
	{"smtpd_recipient_restrictions", ""},
	{"smtpd_client_restrictions", ""},
	{"smtpd_helo_restrictions", ""},
	{"smtpd_sender_restrictions", ""},
	{"smtpd_sender_login_maps", ""},
	{"smtpd_forbid_bare_newline", "yes"},
	{"smtpd_peername_lookup", "yes"},
	{"smtpd_process_count", "0"},
	{"disable_vrfy_command", "no"},
	{"smtpd_sasl_auth_enable", "no"},

	/* SMTP AUTH and authd. The security options are Cyrus SASL property
	 * names (noanonymous, noplaintext, noactive, nodictionary,
	 * forward_secrecy, mutual_auth); smtpd_sasl_security_options applies
	 * to sessions without TLS, smtpd_sasl_tls_security_options to TLS. */
	{"smtpd_sasl_path", "authd"},
	{"smtpd_sasl_service", "smtpd"},
	{"smtpd_sasl_local_domain", ""},
	{"smtpd_sasl_security_options", "noanonymous, noplaintext"},
	{"smtpd_sasl_tls_security_options", "noanonymous"},
	{"smtpd_tls_auth_only", "yes"},
	{"broken_sasl_auth_clients", "yes"},
	{"smtpd_sasl_authenticated_header", "no"},
	{"authd_mechanisms", "PLAIN LOGIN"},
	{"authd_user", "postern-auth"},
	{"authd_sasl_config_directory", "$config_directory/sasl"},
	{"authd_worker_count", "8"},
	{"authd_failure_delay", "1s"},   /* may be given in ms, e.g. 200ms */
	{"authd_failure_delay_limit", "10s"}, /* 0: no limit */
	{"authd_lockout_failures", "10"},
	{"authd_lockout_window", "10m"},
	{"authd_session_timeout", "300s"},
	{"smtp_sasl_auth_enable", "no"},
	{"smtp_sasl_password_maps", ""},
	{"smtp_sasl_mechanism_filter", ""},
	{"smtp_sasl_tls_only", "yes"},

	/* TLS: tlsproxy holds the keys; smtpd and smtp use it. Protocols take
	 * Postfix syntax (">=TLSv1.2", "TLSv1.2 TLSv1.3", "!TLSv1.1"); ciphers
	 * take a grade (medium, high); tls_priority, when set, is a complete
	 * GnuTLS priority string that replaces both. */
	{"smtpd_tls_security_level", "none"},
	{"smtpd_tls_wrappermode", "no"},
	{"smtpd_tls_chain_files", ""},
	{"smtpd_tls_cert_file", ""},
	{"smtpd_tls_key_file", "$smtpd_tls_cert_file"},
	{"smtpd_tls_eccert_file", ""},
	{"smtpd_tls_eckey_file", "$smtpd_tls_eccert_file"},
	{"smtpd_tls_CAfile", ""},
	{"smtpd_tls_protocols", ">=TLSv1.2"},
	{"smtpd_tls_ciphers", "medium"},
	{"smtpd_tls_ask_ccert", "no"},
	{"smtpd_tls_received_header", "yes"},
	{"smtpd_tls_session_cache_timeout", "3600s"},
	{"tls_server_sni_maps", ""},
	{"tls_priority", ""},
	{"smtp_tls_security_level", "none"},
	{"smtp_tls_CAfile", ""},
	{"smtp_tls_policy_maps", ""},
	{"smtp_tls_protocols", ">=TLSv1.2"},
	{"smtp_tls_ciphers", "medium"},
	{"tlsproxy_timeout", "60s"},
	{"tls_expiry_warning_days", "14"},

	/* qmgr. */
	{"queue_run_delay", "300s"},
	{"minimal_backoff_time", "300s"},
	{"maximal_backoff_time", "4000s"},
	{"maximal_queue_lifetime", "5d"},
	{"bounce_queue_lifetime", "5d"},
	{"delay_warning_time", "0h"},
	{"bounce_size_limit", "50000"},
	{"default_destination_concurrency_limit", "20"},
	{"local_destination_concurrency_limit", "2"},
	{"default_recipient_limit", "50"},
	{"qmgr_message_active_limit", "20000"},

	/* Delivery agents and process management. */
	{"default_process_limit", "100"},
	{"max_use", "100"},
	{"max_idle", "100s"},
	{"ipc_timeout", "3600s"},
	{"service_restart_delay", "1s"},

	/* local. */
	{"home_mailbox", ""},
	{"mail_spool_directory", "/var/mail"},
	{"allow_mail_to_commands", "no"},
	{"allow_mail_to_files", "no"},

	/* smtp client. */
	{"smtp_helo_name", "$myhostname"},
	{"smtp_connect_timeout", "30s"},
	{"smtp_helo_timeout", "300s"},
	{"smtp_mail_timeout", "300s"},
	{"smtp_rcpt_timeout", "300s"},
	{"smtp_data_init_timeout", "120s"},
	{"smtp_data_xfer_timeout", "180s"},
	{"smtp_data_done_timeout", "600s"},
	{"smtp_quit_timeout", "300s"},
	{"smtp_connection_cache_time_limit", "2s"},
	{"smtp_bind_address", ""},
	{"smtp_mx_address_limit", "5"},
	{"smtp_mx_session_limit", "2"},
	{"smtp_dns_resolver_address", ""},
	{"lmtp_lhlo_name", "$myhostname"},

	{NULL, NULL}
};
