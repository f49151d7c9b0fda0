module l7tap.test/apptrace

go 1.19
