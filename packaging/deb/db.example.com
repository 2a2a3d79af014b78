; /etc/failoverd/db.example.com: the zone's static records. The names of [zone] records
; (@ and www) are answered by failoverd; the A records below are served until its first answer.
$ORIGIN example.com.
$TTL 300
@       IN SOA  ns1.example.com. hostmaster.example.com. ( 1 3600 600 604800 60 )
        IN NS   ns1.example.com.
        IN NS   ns2.example.com.
ns1     IN A    192.0.2.1
ns2     IN A    198.51.100.2
@       IN A    192.0.2.1
www     IN A    192.0.2.1
