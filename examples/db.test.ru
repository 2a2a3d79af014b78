$ORIGIN test.ru.
$TTL 10
@       IN SOA  ns.master.test.ru. admin.test.ru. ( 2 10 10 10 10 )
        IN NS   ns.master.test.ru.
        IN NS   ns.slave.test.ru.
        IN MX   10 mail.test.ru.
ns.master IN A  192.0.2.1
ns.slave  IN A  198.51.100.2
mail    IN A    192.0.2.1
; @ and www are managed by failoverd; these are served until the first answer is published.
@       IN A    192.0.2.1
www     IN A    192.0.2.1
