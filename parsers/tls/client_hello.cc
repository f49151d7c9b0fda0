// TLS ClientHello parsing (SNI, ALPN).
