$ORIGIN example.com.
$TTL 300
@       IN SOA  ns1.example.com. hostmaster.example.com. ( 2026120101 3600 600 1209600 300 )
        IN NS   ns1.example.com.
        IN NS   ns2.example.com.
        IN MX   10 mail.example.com.
ns1     IN A    192.0.2.10
ns2     IN A    198.51.100.10
mail    IN A    192.0.2.25
; @ and www are managed by failoverd (TTL 10); these are served until the first answer is published.
@       IN A    192.0.2.10
www     IN A    192.0.2.10
