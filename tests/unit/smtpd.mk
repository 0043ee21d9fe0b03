# Unit tests of the smtpd area.
