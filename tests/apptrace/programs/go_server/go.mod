module l7tap.test/apptracego

go 1.17
