module l7tap.test/apptrace/targets

go 1.19
