module l7tap.test/tlspair

go 1.17
